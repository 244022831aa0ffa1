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
//!
//! The wait has no timer of its own (a may timer per request costs a wake of
//! may's timer thread). The engine guarantees the reply instead: its
//! `Responder` answers when dropped unanswered, and an operation that holds a
//! partition is abandoned, dropping its responder, after the engine's
//! operation timeout (`PORTCULLIS_ENGINE_TIMEOUT`).

use portcullis_engine::{AuthError, Command, Engine, Reply, Responder};

/// Hands commands to the engine and parks the coroutine until the reply.
#[derive(Clone, Debug)]
pub struct Bridge {
    engine: Engine,
}

impl Bridge {
    /// A bridge to `engine`.
    pub fn new(engine: Engine) -> Bridge {
        Bridge { engine }
    }

    /// Submits `cmd` and waits, parking only the current coroutine.
    pub fn call(&self, cmd: Command) -> Reply {
        let (tx, rx) = may::sync::mpsc::channel();
        self.engine.submit(
            cmd,
            Responder::new(move |reply| {
                let _ = tx.send(reply);
            }),
        );
        // The responder always sends before it is dropped; a closed channel
        // without a reply would be an engine bug: answer 503 rather than hang.
        rx.recv().unwrap_or(Err(AuthError::Unavailable {
            retry_after_secs: 1,
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
