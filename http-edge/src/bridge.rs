//! The bridge from may coroutines to the engine.
//!
//! [`Bridge::call`] hands a [`Command`] to [`Engine::submit`] with a
//! [`Responder`] that sends the reply into a `may` channel, then receives
//! from that channel. Receiving parks the calling *coroutine* (the may worker
//! thread goes on running other connections) until the engine's tokio side
//! replies; the send wakes it. Nothing here needs a tokio context: the engine
//! was given its runtime `Handle` explicitly when it was built and spawns
//! through it, and casting to an actor is a plain channel send. No
//! thread-local state is used, so it is safe for the coroutine to resume on
//! another worker thread.

use std::time::Duration;

use portcullis_engine::{AuthError, Command, Engine, Reply, Responder};

/// Hands commands to the engine and parks the coroutine until the reply.
#[derive(Clone, Debug)]
pub struct Bridge {
    engine: Engine,
    timeout: Duration,
}

impl Bridge {
    /// A bridge to `engine`; a reply not received within `timeout` is answered `unavailable`.
    pub fn new(engine: Engine, timeout: Duration) -> Bridge {
        Bridge { engine, timeout }
    }

    /// Submits `cmd` and waits, parking only the current coroutine.
    pub fn call(&self, cmd: Command) -> Reply {
        let (tx, rx) = may::sync::mpsc::channel();
        self.engine.submit(
            cmd,
            Responder::new(move |reply| {
                // The receiver is gone only if the coroutine timed out.
                let _ = tx.send(reply);
            }),
        );
        match rx.recv_timeout(self.timeout) {
            Ok(reply) => reply,
            Err(_) => {
                tracing::error!(
                    timeout_ms = self.timeout.as_millis() as u64,
                    "engine did not reply in time"
                );
                Err(AuthError::Unavailable {
                    retry_after_secs: 1,
                })
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
