//! The storage layer's one error type.

/// What went wrong in a storage backend.
///
/// The engine maps these to its own errors: `Unavailable` and `Timeout` become
/// a 503 with `Retry-After` at the edge, conflicts become domain answers, and
/// everything else is an internal error whose text is logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user already owns this (normalized) email address.
    #[error("email address is already registered")]
    EmailTaken,
    /// The record changed since it was read (optimistic concurrency check failed).
    #[error("record was modified concurrently (expected version {expected})")]
    VersionConflict {
        /// The version the caller based its update on.
        expected: u64,
    },
    /// The record to update does not exist.
    #[error("record not found")]
    NotFound,
    /// The backend cannot serve requests right now (down, unreachable, overloaded,
    /// or shutting down). Retrying later may succeed.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer in time. The operation may or may not have been applied.
    #[error("storage operation timed out after {0} ms")]
    Timeout(u64),
    /// A stored record could not be decoded: check the data directory for damage
    /// or a downgrade to an older Portcullis version.
    #[error("stored record is corrupt or of an unknown format: {0}")]
    Corrupt(String),
    /// An I/O error in the backend (disk full, permissions on the data directory, ...).
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Any other backend error; the text says which backend and what failed.
    #[error("storage backend error: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether the caller may reasonably retry later (the edge answers 503).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Timeout(_))
    }
}
