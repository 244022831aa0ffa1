//! The retry policy: retry only what is certain not to have been applied, or
//! what may be applied twice without harm.
//!
//! Lightweight transactions and every statement not marked idempotent are
//! never retried after they may have reached a replica (a timeout, a broken
//! connection): the store resolves such an unknown outcome itself, by
//! reading at serial consistency. What the coordinator refused before doing
//! anything (`Unavailable`, bootstrapping, overloaded) is retried once on the
//! next node of the plan, idempotent or not.

use scylla::errors::{DbError, RequestAttemptError, WriteType};
use scylla::policies::retry::{RequestInfo, RetryDecision, RetryPolicy, RetrySession};
use scylla::statement::Consistency;

/// Portcullis' retry policy (see the module documentation).
#[derive(Debug, Clone, Copy, Default)]
pub struct PortcullisRetryPolicy;

impl RetryPolicy for PortcullisRetryPolicy {
    fn new_session(&self) -> Box<dyn RetrySession> {
        Box::new(Session::default())
    }
}

/// What one request has used up.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    retries: u8,
}

/// At most this many retries per request, whatever the reasons.
pub const MAX_RETRIES: u8 = 2;

impl RetrySession for Session {
    fn decide_should_retry(&mut self, info: RequestInfo<'_>) -> RetryDecision {
        self.decide(info.error, info.is_idempotent, info.consistency)
    }

    fn reset(&mut self) {
        *self = Session::default();
    }
}

impl Session {
    /// The decision for one failed attempt (pure but for the retry count).
    pub fn decide(
        &mut self,
        error: &RequestAttemptError,
        idempotent: bool,
        consistency: Consistency,
    ) -> RetryDecision {
        if self.retries >= MAX_RETRIES {
            return RetryDecision::DontRetry;
        }
        let decision = decision(error, idempotent, consistency);
        if decision != RetryDecision::DontRetry {
            self.retries += 1;
        }
        decision
    }
}

fn decision(
    error: &RequestAttemptError,
    idempotent: bool,
    consistency: Consistency,
) -> RetryDecision {
    let next = RetryDecision::RetryNextTarget(None);
    match error {
        // The request may have reached the node: only if repeating is harmless.
        RequestAttemptError::BrokenConnectionError(_) => {
            if idempotent {
                next
            } else {
                RetryDecision::DontRetry
            }
        }
        // Nothing was sent.
        RequestAttemptError::UnableToAllocStreamId => next,
        RequestAttemptError::DbError(db, _) => match db {
            // The coordinator refused before doing anything.
            DbError::Unavailable { .. } | DbError::IsBootstrapping => next,
            DbError::Overloaded | DbError::RateLimitReached { .. } | DbError::ServerError => {
                if idempotent {
                    next
                } else {
                    RetryDecision::DontRetry
                }
            }
            // Enough replicas answered but not the data: the same read again
            // usually succeeds. Serial reads resolve an unknown LWT outcome;
            // they are idempotent too.
            DbError::ReadTimeout {
                received,
                required,
                data_present,
                ..
            } => {
                if idempotent && received >= required && !*data_present {
                    RetryDecision::RetrySameTarget(None)
                } else {
                    RetryDecision::DontRetry
                }
            }
            // A plain idempotent write may be written twice (same values,
            // same client timestamp). A CAS write may have been applied: the
            // caller reads at serial consistency instead.
            DbError::WriteTimeout { write_type, .. } => {
                if idempotent && !consistency.is_serial() && *write_type != WriteType::Cas {
                    next
                } else {
                    RetryDecision::DontRetry
                }
            }
            _ => RetryDecision::DontRetry,
        },
        _ => RetryDecision::DontRetry,
    }
}
