//! Driver errors: which are transient, which leave an outcome unknown, and
//! what the retry policy retries.

use std::time::Duration;

use ::scylla::errors::{
    BrokenConnectionErrorKind, DbError, ExecutionError, RequestAttemptError, WriteType,
};
use ::scylla::policies::retry::RetryDecision;
use ::scylla::statement::Consistency;

use crate::StoreError;
use crate::scylla::retry::{MAX_RETRIES, Session};
use crate::scylla::*;

fn db(e: DbError) -> ExecutionError {
    ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "msg".into()))
}

fn broken() -> RequestAttemptError {
    RequestAttemptError::BrokenConnectionError(
        BrokenConnectionErrorKind::KeepaliveTimeout("10.0.0.1".parse().unwrap()).into(),
    )
}

fn write_timeout(write_type: WriteType) -> DbError {
    DbError::WriteTimeout {
        consistency: Consistency::LocalQuorum,
        received: 1,
        required: 2,
        write_type,
    }
}

#[test]
fn a_degraded_cluster_maps_to_transient_errors() {
    let t = Duration::from_millis(2000);
    let transient = [
        db(DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1,
        }),
        db(DbError::Overloaded),
        db(DbError::IsBootstrapping),
        db(write_timeout(WriteType::Cas)),
        db(DbError::ReadTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            data_present: false,
        }),
        ExecutionError::RequestTimeout(t),
        ExecutionError::EmptyPlan,
        ExecutionError::LastAttemptError(broken()),
    ];
    for e in transient {
        let mapped = errmap::execution(&e, t);
        assert!(mapped.is_transient(), "{e} -> {mapped:?}");
    }
    assert!(matches!(
        errmap::execution(&ExecutionError::RequestTimeout(t), t),
        StoreError::Timeout(2000)
    ));
    assert!(matches!(
        errmap::execution(&db(write_timeout(WriteType::Simple)), t),
        StoreError::Timeout(2000)
    ));
}

#[test]
fn schema_and_credential_problems_are_not_transient_and_say_what_to_do() {
    let t = Duration::from_secs(2);
    let e = errmap::execution(&db(DbError::Invalid), t);
    assert!(!e.is_transient());
    assert!(e.to_string().contains("portcullis migrate"), "{e}");
    let e = errmap::execution(&db(DbError::Unauthorized), t);
    assert!(matches!(e, StoreError::Backend(_)));
    assert!(e.to_string().contains("credentials"), "{e}");
}

#[test]
fn only_errors_after_sending_leave_the_outcome_unknown() {
    assert!(errmap::outcome_unknown(&ExecutionError::RequestTimeout(
        Duration::from_secs(1)
    )));
    assert!(errmap::outcome_unknown(&db(write_timeout(WriteType::Cas))));
    assert!(errmap::outcome_unknown(&ExecutionError::LastAttemptError(
        broken()
    )));
    assert!(!errmap::outcome_unknown(&db(DbError::Unavailable {
        consistency: Consistency::LocalQuorum,
        required: 2,
        alive: 1
    })));
    assert!(!errmap::outcome_unknown(&ExecutionError::EmptyPlan));
    assert!(!errmap::outcome_unknown(&db(DbError::Invalid)));
}

// ---------------------------------------------------------------- retries

fn attempt(e: DbError) -> RequestAttemptError {
    RequestAttemptError::DbError(e, String::new())
}

#[test]
fn non_idempotent_writes_are_never_retried_once_they_may_have_run() {
    let q = Consistency::LocalQuorum;
    let may_have_run = [
        broken(),
        attempt(write_timeout(WriteType::Cas)),
        attempt(write_timeout(WriteType::Simple)),
        attempt(DbError::Overloaded),
        attempt(DbError::ServerError),
    ];
    for e in may_have_run {
        assert_eq!(
            Session::default().decide(&e, false, q),
            RetryDecision::DontRetry,
            "{e}"
        );
    }
}

#[test]
fn what_the_coordinator_refused_is_retried_once_on_the_next_node() {
    let q = Consistency::LocalQuorum;
    let unavailable = attempt(DbError::Unavailable {
        consistency: q,
        required: 2,
        alive: 1,
    });
    for idempotent in [false, true] {
        assert_eq!(
            Session::default().decide(&unavailable, idempotent, q),
            RetryDecision::RetryNextTarget(None)
        );
        assert_eq!(
            Session::default().decide(&attempt(DbError::IsBootstrapping), idempotent, q),
            RetryDecision::RetryNextTarget(None)
        );
    }
}

#[test]
fn idempotent_statements_are_retried_after_transient_failures() {
    let q = Consistency::LocalQuorum;
    let mut s = Session::default();
    assert_eq!(
        s.decide(&broken(), true, q),
        RetryDecision::RetryNextTarget(None)
    );
    assert_eq!(
        Session::default().decide(&attempt(write_timeout(WriteType::Simple)), true, q),
        RetryDecision::RetryNextTarget(None)
    );
    // A CAS write is never retried, even when marked idempotent.
    assert_eq!(
        Session::default().decide(&attempt(write_timeout(WriteType::Cas)), true, q),
        RetryDecision::DontRetry
    );
    // A read that timed out with enough replies but no data: same node again.
    let rt = attempt(DbError::ReadTimeout {
        consistency: q,
        received: 2,
        required: 2,
        data_present: false,
    });
    assert_eq!(
        Session::default().decide(&rt, true, q),
        RetryDecision::RetrySameTarget(None)
    );
    let rt_short = attempt(DbError::ReadTimeout {
        consistency: q,
        received: 1,
        required: 2,
        data_present: false,
    });
    assert_eq!(
        Session::default().decide(&rt_short, true, q),
        RetryDecision::DontRetry
    );
}

#[test]
fn retries_per_request_are_bounded() {
    let q = Consistency::LocalQuorum;
    let mut s = Session::default();
    for _ in 0..MAX_RETRIES {
        assert_ne!(s.decide(&broken(), true, q), RetryDecision::DontRetry);
    }
    assert_eq!(s.decide(&broken(), true, q), RetryDecision::DontRetry);
    s = Session::default();
    assert_eq!(
        s.decide(&attempt(DbError::Invalid), true, q),
        RetryDecision::DontRetry
    );
    assert_eq!(
        s.decide(&attempt(DbError::SyntaxError), true, q),
        RetryDecision::DontRetry
    );
}
