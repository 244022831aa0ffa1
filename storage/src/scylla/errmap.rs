//! Driver errors -> [`StoreError`]: what a degraded cluster causes becomes
//! `Unavailable` or `Timeout` (the edge answers 503 with `Retry-After`);
//! what only a wrong schema, wrong credentials or a bug causes becomes
//! `Backend`, whose text is logged and never shown.

use std::time::Duration;

use scylla::errors::{DbError, ExecutionError, NewSessionError, PrepareError, RequestAttemptError};

use crate::{StoreError, ms};

/// Maps an error of one request; `timeout` is the configured request timeout.
pub(crate) fn execution(e: &ExecutionError, timeout: Duration) -> StoreError {
    match e {
        ExecutionError::RequestTimeout(d) => StoreError::Timeout(ms(*d)),
        ExecutionError::EmptyPlan => StoreError::Unavailable(
            "no ScyllaDB node to send the request to (are the local datacenter's nodes down, or does the local datacenter setting name no datacenter?)".into(),
        ),
        ExecutionError::ConnectionPoolError(p) => {
            StoreError::Unavailable(format!("ScyllaDB: no connection: {p}"))
        }
        ExecutionError::LastAttemptError(a) => attempt(a, timeout),
        ExecutionError::PrepareError(p) => prepare(p),
        ExecutionError::SchemaAgreementError(_) | ExecutionError::MetadataError(_) => {
            StoreError::Unavailable(format!("ScyllaDB: {e}"))
        }
        _ => StoreError::Backend(format!("ScyllaDB: {e}")),
    }
}

/// Maps the error of the last attempt of a request.
pub(crate) fn attempt(a: &RequestAttemptError, timeout: Duration) -> StoreError {
    match a {
        RequestAttemptError::BrokenConnectionError(_)
        | RequestAttemptError::UnableToAllocStreamId => {
            StoreError::Unavailable(format!("ScyllaDB: {a}"))
        }
        RequestAttemptError::DbError(db, msg) => match db {
            DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => {
                StoreError::Timeout(ms(timeout))
            }
            DbError::Unavailable { .. }
            | DbError::Overloaded
            | DbError::IsBootstrapping
            | DbError::RateLimitReached { .. }
            | DbError::ReadFailure { .. }
            | DbError::WriteFailure { .. }
            | DbError::ServerError
            | DbError::TruncateError => StoreError::Unavailable(format!("ScyllaDB: {db}: {msg}")),
            DbError::AuthenticationError | DbError::Unauthorized => StoreError::Backend(format!(
                "ScyllaDB refused the credentials or the permission: {db}: {msg}"
            )),
            DbError::Invalid | DbError::SyntaxError | DbError::ConfigError => {
                StoreError::Backend(format!(
                    "ScyllaDB rejected a statement (is the schema migrated? run portcullis migrate): {db}: {msg}"
                ))
            }
            _ => StoreError::Backend(format!("ScyllaDB: {db}: {msg}")),
        },
        _ => StoreError::Backend(format!("ScyllaDB: {a}")),
    }
}

/// Maps a failure to prepare a statement.
pub(crate) fn prepare(p: &PrepareError) -> StoreError {
    match p {
        PrepareError::ConnectionPoolError(_) => {
            StoreError::Unavailable(format!("ScyllaDB: cannot prepare: {p}"))
        }
        _ => StoreError::Backend(format!(
            "ScyllaDB: cannot prepare a statement (is the schema migrated? run portcullis migrate): {p}"
        )),
    }
}

/// Maps a failure to open the session.
pub(crate) fn new_session(e: &NewSessionError) -> StoreError {
    match e {
        NewSessionError::EmptyKnownNodesList | NewSessionError::IllegalConfig(_) => {
            StoreError::Backend(format!("ScyllaDB settings: {e}"))
        }
        _ => StoreError::Unavailable(format!("ScyllaDB: cannot connect: {e}")),
    }
}

/// Whether a failed write may nevertheless have been applied (it reached a
/// coordinator and the answer was lost or late). A lightweight transaction
/// with such an outcome is resolved by a serial read.
pub(crate) fn outcome_unknown(e: &ExecutionError) -> bool {
    match e {
        ExecutionError::RequestTimeout(_) => true,
        ExecutionError::LastAttemptError(a) => match a {
            RequestAttemptError::BrokenConnectionError(_) => true,
            RequestAttemptError::DbError(db, _) => matches!(
                db,
                DbError::WriteTimeout { .. }
                    | DbError::ReadTimeout { .. }
                    | DbError::WriteFailure { .. }
                    | DbError::ServerError
            ),
            _ => false,
        },
        _ => false,
    }
}
