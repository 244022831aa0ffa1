//! The one shutdown signal of a running engine (and of the edge threads
//! that live as long as it).
//!
//! Two steps, in order: [`Shutdown::begin`] refuses new operations
//! (`unavailable`) while admitted ones drain; [`Shutdown::stop_listeners`]
//! then tells every [`Listener`] (the background jobs, the start-up
//! connector, the edge's upkeep thread), asynchronously ([`Listener::recv`])
//! or by polling ([`Listener::is_shutdown`]). So the jobs (the mailer among
//! them) keep running while the operations they serve drain.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// The signal's owner.
#[derive(Debug)]
pub struct Shutdown {
    closing: AtomicBool,
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            closing: AtomicBool::new(false),
            tx: watch::channel(false).0,
        }
    }
}

impl Shutdown {
    /// Begins the shutdown: new operations are refused. `false` if it had
    /// begun already.
    pub fn begin(&self) -> bool {
        !self.closing.swap(true, Ordering::AcqRel)
    }

    /// Tells every listener to stop (after the drain).
    pub fn stop_listeners(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the shutdown has begun (new operations are refused).
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// A listener for the signal.
    pub fn listen(&self) -> Listener {
        Listener(self.tx.subscribe())
    }
}

/// Sees the signal of one [`Shutdown`].
#[derive(Debug, Clone)]
pub struct Listener(watch::Receiver<bool>);

impl Listener {
    /// Whether the listeners were told to stop.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the listeners are told to stop (at once if they have).
    pub async fn recv(&mut self) {
        // An error means the owner is gone: that is a shutdown too.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Sleeps `d`; `false` (at once) when the listeners are told to stop first.
    pub async fn sleep(&mut self, d: std::time::Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.recv() => false,
        }
    }
}
