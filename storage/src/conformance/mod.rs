//! The backend conformance suite, written once and run against every backend.
//!
//! Each check takes freshly created, empty, isolated stores. A backend's test
//! module instantiates the whole suite with [`conformance_suite!`], giving it an
//! async function that builds such stores (a temporary directory, a key prefix,
//! a new keyspace). Checks assert behaviour a caller relies on, including the
//! atomicity of the compound operations under concurrency.

// A test suite: a failed step is a failed check, so it unwraps.
//!
//! The checks live in submodules by subject and are re-exported here, where
//! `conformance_suite!` names them; this module holds the stores' pair, the
//! sample records and the macro.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod email_change;
mod identities;
mod keys;
mod limits;
mod mail;
mod rotation;
mod sessions;
mod users;

use std::sync::Arc;

use crate::model::{RotateRequest, SessionId, SessionRecord, UserId, UserRecord};
use crate::{TokenStore, UserStore};

pub use email_change::{
    user_change_email_checks_version, user_change_email_moves_the_index,
    user_change_email_to_a_taken_address_changes_nothing,
    user_concurrent_changes_to_one_email_exactly_one_wins,
};
pub use identities::{
    identity_claim_find_release, identity_concurrent_claims_exactly_one_wins,
    stash_is_taken_once_and_expires,
};
pub use keys::{refresh_chain_key_is_created_once, signing_keys_save_load_replace_delete};
pub use limits::{
    lockout_concurrent_failures_are_all_counted, lockout_counts_locks_and_backs_off,
    lockout_window_expires_failures, rate_limit_admits_a_burst_then_asks_to_wait,
};
pub use mail::{
    mail_claims_retries_and_deletes, mail_is_queued_with_the_record_and_due_in_order,
    mail_of_a_failed_write_is_not_queued,
};
pub use rotation::{
    rotate_caps_expiry_at_session_max, rotate_concurrent_exactly_one_wins, rotate_current_token,
    rotate_missing_or_expired_is_invalid, rotate_with_a_stale_expectation_conflicts,
};
pub use sessions::{
    purge_removes_expired_sessions, session_cap_ends_the_least_recently_used,
    session_create_get_list_delete, session_delete_all_is_scoped_to_user,
    session_expired_is_invisible,
};
pub use users::{
    user_account_state_is_kept_with_the_record, user_concurrent_same_email_exactly_one_wins,
    user_create_get_and_find, user_duplicate_email_rejected_without_writing,
    user_scan_visits_every_user_once, user_unknown_reads_none, user_update_checks_version,
};

/// A pair of fresh stores for one check, plus whatever keeps them alive.
pub struct Backends {
    /// The user store under test.
    pub users: Arc<dyn UserStore>,
    /// The token store under test.
    pub tokens: Arc<dyn TokenStore>,
    /// Dropped when the check ends (temporary directories, server guards).
    pub guard: Box<dyn std::any::Any + Send>,
}

/// Generates one `#[tokio::test]` per conformance check, each calling `$fresh().await`
/// for its own stores.
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:path) => {
        $crate::conformance_suite!(@users $fresh);
        $crate::conformance_suite!(@each $fresh;
            session_create_get_list_delete,
            session_expired_is_invisible,
            session_delete_all_is_scoped_to_user,
            session_cap_ends_the_least_recently_used,
            rotate_current_token,
            rotate_caps_expiry_at_session_max,
            rotate_with_a_stale_expectation_conflicts,
            rotate_missing_or_expired_is_invalid,
            rotate_concurrent_exactly_one_wins,
            refresh_chain_key_is_created_once,
            lockout_counts_locks_and_backs_off,
            lockout_window_expires_failures,
            lockout_concurrent_failures_are_all_counted,
            rate_limit_admits_a_burst_then_asks_to_wait,
            signing_keys_save_load_replace_delete,
            purge_removes_expired_sessions,
            stash_is_taken_once_and_expires,
            ping_and_flush,
        );
    };
    // The user-store checks alone.
    (@users $fresh:path) => {
        $crate::conformance_suite!(@user_checks each $fresh);
    };
    // The list of user-store checks, handed to the `@each` arm.
    (@user_checks $arm:ident $fresh:path) => {
        $crate::conformance_suite!(@ $arm $fresh;
            user_create_get_and_find,
            user_duplicate_email_rejected_without_writing,
            user_concurrent_same_email_exactly_one_wins,
            user_update_checks_version,
            user_account_state_is_kept_with_the_record,
            mail_is_queued_with_the_record_and_due_in_order,
            mail_of_a_failed_write_is_not_queued,
            mail_claims_retries_and_deletes,
            user_unknown_reads_none,
            user_scan_visits_every_user_once,
            user_change_email_moves_the_index,
            user_change_email_to_a_taken_address_changes_nothing,
            user_change_email_checks_version,
            user_concurrent_changes_to_one_email_exactly_one_wins,
            identity_claim_find_release,
            identity_concurrent_claims_exactly_one_wins,
        );
    };
    (@each $fresh:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let b = $fresh().await;
                $crate::conformance::$check(&b).await;
            }
        )*
    };
}

const T0: u64 = 1_800_000_000_000;
const DAY: u64 = 86_400_000;

/// A user record for tests.
pub fn sample_user(n: u8, email: &str) -> UserRecord {
    UserRecord {
        id: UserId([n; 16]),
        email: email.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$hash{n}"),
        name: Some(format!("User {n}")),
        picture_url: None,
        email_verified: false,
        mfa_enabled: false,
        created_at_ms: T0,
        updated_at_ms: T0,
        version: 1,
        account: Default::default(),
    }
}

/// A session record for tests.
pub fn sample_session(user: u8, sid: u8, hash: u8) -> SessionRecord {
    SessionRecord {
        user_id: UserId([user; 16]),
        id: SessionId([sid; 16]),
        created_at_ms: T0,
        last_used_at_ms: T0,
        expires_at_ms: T0 + 30 * DAY,
        max_expires_at_ms: T0 + 90 * DAY,
        ip: Some("198.51.100.7".into()),
        user_agent: Some("conformance".into()),
        refresh_hash: [hash; 32],
        generation: 0,
        rotated_at_ms: T0,
        amr: vec!["pwd".into(), "otp".into()],
        auth_time_ms: T0 - 5,
    }
}

/// A rotation expecting `expected` (hash byte) at `generation`.
fn rotate_at(
    s: &SessionRecord,
    expected: u8,
    generation: u64,
    new: u8,
    now_ms: u64,
) -> RotateRequest {
    RotateRequest {
        user_id: s.user_id,
        session_id: s.id,
        expected_hash: [expected; 32],
        expected_generation: generation,
        new_hash: [new; 32],
        now_ms,
        new_expires_at_ms: now_ms + 30 * DAY,
    }
}

fn rotate(s: &SessionRecord, expected: u8, new: u8, now_ms: u64) -> RotateRequest {
    rotate_at(s, expected, s.generation, new, now_ms)
}

/// An outbox message for tests: id `n` (time-ordered by `n`), due at `due`.
pub fn sample_mail(n: u8, user: UserId, due: u64) -> crate::model::OutboxRecord {
    let mut id = [0u8; 16];
    id[0] = n;
    id[15] = n.wrapping_mul(37);
    crate::model::OutboxRecord {
        id,
        user_id: user,
        created_at_ms: T0,
        due_at_ms: due,
        attempts: 0,
        payload: vec![n; 64],
    }
}

/// Both stores answer readiness and flush.
pub async fn ping_and_flush(b: &Backends) {
    b.users.ping().await.unwrap();
    b.tokens.ping().await.unwrap();
    b.users.flush().await.unwrap();
    b.tokens.flush().await.unwrap();
}
