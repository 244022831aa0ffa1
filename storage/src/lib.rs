//! Portcullis storage: the [`UserStore`] and [`TokenStore`] traits, the records
//! they hold, and their backends.
//!
//! Storage knows nothing of HTTP, JSON DTOs or actors: it stores records and
//! performs the few compound operations that must be atomic in the backend
//! (email-unique user creation, refresh-token rotation, lockout and rate-limit
//! counting). Backends: [`embedded`] (fjall, the default), [`redis`]
//! (Redis Cluster, tokens only) and [`scylla`] (ScyllaDB, users only).
//! Every operation that depends on time takes `now_ms` from the caller, whose
//! clock is injected, so tests control time.

#![forbid(unsafe_code)]

mod codec;
pub mod embedded;
mod error;
pub mod late;
mod model;
pub mod private_fs;
pub mod redis;
pub mod scylla;
mod stopwatch;
mod traits;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::StoreError;
pub use model::{
    AccountState, IdentityClaim, LinkedIdentity, LockoutPolicy, LockoutStatus, NodeCount,
    OutboxRecord, PendingEmailChange, PendingToken, RateLimit, RotateOutcome, RotateRequest,
    SessionId, SessionRecord, SigningKeyRecord, StoredPasskey, TokenHash, TotpState, UserId,
    UserRecord,
};
pub use stopwatch::ms;
pub use traits::{TokenStore, UserStore};

/// Result type of every storage operation.
pub type StoreResult<T> = Result<T, StoreError>;
