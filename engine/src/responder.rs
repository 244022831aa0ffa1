//! Where the answer to one operation goes: a [`Responder`] delivers exactly
//! one [`Reply`] of the operation's own type.

use crate::error::AuthError;

/// An operation's answer: its typed result, or why it failed.
pub type Reply<T> = Result<T, AuthError>;

/// Where the answer to one operation goes.
///
/// Exactly one reply is delivered: the one sent, or, when the engine drops the
/// responder unanswered, a stand-in: `Internal` if dropped by a panic (a bug),
/// else `Unavailable` (an abandoned operation at shutdown or after the
/// operation timeout). So the edge never waits forever.
pub struct Responder<T>(Option<Box<dyn FnOnce(Reply<T>) + Send + 'static>>);

impl<T> Responder<T> {
    /// A responder calling `f` with the reply.
    pub fn new(f: impl FnOnce(Reply<T>) + Send + 'static) -> Responder<T> {
        Responder(Some(Box::new(f)))
    }

    /// Delivers the reply.
    pub fn send(mut self, reply: Reply<T>) {
        if let Some(f) = self.0.take() {
            f(reply);
        }
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let stand_in = if std::thread::panicking() {
                AuthError::Internal("the operation panicked".into())
            } else {
                AuthError::Unavailable {
                    retry_after_secs: 1,
                }
            };
            f(Err(stand_in));
        }
    }
}

impl<T> std::fmt::Debug for Responder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}
