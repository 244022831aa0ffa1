//! The bridge from may coroutines to the engine.
//!
//! [`Bridge::call`] hands an [`Operation`] to [`Engine::submit`] with a
//! [`Responder`] that stores the reply in a one-shot slot and unparks the
//! caller, which meanwhile waits on a `may` `Blocker`. Waiting parks the
//! calling *coroutine* (the may worker thread goes on running other
//! connections) until the engine's tokio side replies; the reply wakes it. Nothing here needs a tokio context: the engine
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use may::sync::Blocker;
use portcullis_engine::{AuthError, Engine, Operation, Reply, Responder};

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

    /// Submits `op` and waits for its typed reply, parking only the
    /// current coroutine.
    pub fn call<O: Operation>(&self, op: O) -> Reply<O::Reply> {
        let slot = Arc::new(Slot {
            reply: Mutex::new(None),
            closed: AtomicBool::new(false),
            blocker: Blocker::new(false),
        });
        let tx = Sender(slot.clone());
        self.engine
            .submit(op, Responder::new(move |reply| tx.send(reply)));
        loop {
            let closed = slot.closed.load(Ordering::Acquire);
            if let Some(reply) = slot.take() {
                return reply;
            }
            // The responder always sends before it is dropped; a sender gone
            // without a reply would be an engine bug, and a cancelled
            // coroutine (shutdown) cannot wait: answer 503 rather than hang.
            if closed || slot.blocker.park(None).is_err() {
                return Err(AuthError::Unavailable {
                    retry_after_secs: 1,
                });
            }
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A one-shot reply slot. Lighter than a `may` channel, whose creation
/// zeroes a whole queue block: that memset was 1.5 % of the server's CPU
/// under refresh load.
struct Slot<T> {
    reply: Mutex<Option<Reply<T>>>,
    /// Set when the sender is gone, after any reply was stored.
    closed: AtomicBool,
    /// Parks the waiting coroutine (or thread); a wake-up before the park is
    /// kept, so none is lost.
    blocker: Blocker,
}

impl<T> Slot<T> {
    fn take(&self) -> Option<Reply<T>> {
        self.reply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// The engine's side of a [`Slot`]: stores the reply; wakes the waiter when
/// dropped, with or without one.
struct Sender<T>(Arc<Slot<T>>);

impl<T> Sender<T> {
    fn send(self, reply: Reply<T>) {
        *self.0.reply.lock().unwrap_or_else(PoisonError::into_inner) = Some(reply);
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.blocker.unpark();
    }
}
