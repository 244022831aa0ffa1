//! The steps operations are made of, shared by several of them: bearer
//! verification, sessions, signing in, lockout counters, rate limits, the
//! outbox, user record writes, the TOTP second factor, store health.
//!
//! Steps sit between the [`Core`](crate::core::Core) and the operations
//! ([`crate::ops`]): they use the core and everything below it, and never
//! an operation.

pub(crate) mod access;
pub(crate) mod health;
pub(crate) mod limits;
pub(crate) mod lockout;
pub(crate) mod outbox;
pub(crate) mod passkeys;
pub(crate) mod record;
pub(crate) mod sessions;
pub(crate) mod signin;
pub(crate) mod social;
pub(crate) mod stash;
pub(crate) mod totp;
