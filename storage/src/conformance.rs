//! The backend conformance suite, written once and run against every backend.
//!
//! Each check takes freshly created, empty, isolated stores. A backend's test
//! module instantiates the whole suite with [`conformance_suite!`], giving it an
//! async function that builds such stores (a temporary directory, a key prefix,
//! a new keyspace). Checks assert behaviour a caller relies on, including the
//! atomicity of the compound operations under concurrency.

// A test suite: a failed step is a failed check, so it unwraps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use crate::model::{
    LockoutPolicy, RateLimit, RotateOutcome, RotateRequest, SessionId, SessionRecord,
    SigningKeyRecord, UserId, UserRecord,
};
use crate::{StoreError, TokenStore, UserStore};

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

/// Create, read back by id, resolve by email.
pub async fn user_create_get_and_find(b: &Backends) {
    let u = sample_user(1, "ada@example.com");
    b.users.create_user(&u).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        b.users
            .find_user_id_by_email("ada@example.com")
            .await
            .unwrap(),
        Some(u.id)
    );
}

/// A second user with a taken email fails with `EmailTaken` and leaves no trace.
pub async fn user_duplicate_email_rejected_without_writing(b: &Backends) {
    let first = sample_user(1, "dup@example.com");
    b.users.create_user(&first).await.unwrap();
    let second = sample_user(2, "dup@example.com");
    let err = b.users.create_user(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    assert_eq!(b.users.get_user(second.id).await.unwrap(), None);
    assert_eq!(
        b.users
            .find_user_id_by_email("dup@example.com")
            .await
            .unwrap(),
        Some(first.id)
    );
}

/// Fifty concurrent creations of one email: exactly one succeeds, one user exists.
pub async fn user_concurrent_same_email_exactly_one_wins(b: &Backends) {
    let mut tasks = Vec::new();
    for n in 0..50u8 {
        let users = b.users.clone();
        tasks.push(tokio::spawn(async move {
            let u = sample_user(n + 10, "race@example.com");
            (u.id, users.create_user(&u).await)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (id, r) = t.await.unwrap();
        match r {
            Ok(()) => winners.push(id),
            Err(StoreError::EmailTaken) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one creation must win");
    let owner = b
        .users
        .find_user_id_by_email("race@example.com")
        .await
        .unwrap();
    assert_eq!(owner, Some(winners[0]));
    for n in 0..50u8 {
        let id = UserId([n + 10; 16]);
        let stored = b.users.get_user(id).await.unwrap();
        assert_eq!(
            stored.is_some(),
            id == winners[0],
            "only the winner is stored"
        );
    }
}

/// Updates apply only on the expected version.
/// Pending tokens and the TOTP state are written and read with the record,
/// under its version check, through every write path, and can be cleared.
pub async fn user_account_state_is_kept_with_the_record(b: &Backends) {
    use crate::model::{AccountState, PendingEmailChange, PendingToken, TotpState};
    let mut u = sample_user(31, "account@example.com");
    u.account.verify_email = Some(PendingToken {
        hash: [5; 32],
        expires_at_ms: T0 + DAY,
    });
    b.users.create_user(&u).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));

    u.account = AccountState {
        email_change: Some(PendingEmailChange {
            token: PendingToken {
                hash: [6; 32],
                expires_at_ms: T0 + DAY,
            },
            new_email: "account-new@example.com".into(),
        }),
        totp: Some(TotpState {
            secret_sealed: vec![8; 49],
            confirmed: true,
            last_step: Some(57_000_000),
            recovery_hashes: vec![[9; 32]; 10],
            recovery_sealed: vec![10; 40],
        }),
        credentials_epoch: 3,
        device_epoch: 2,
        ..AccountState::default()
    };
    u.version = 2;
    b.users.update_user(&u, 1).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));

    // An email change carries the state along (and may clear parts of it).
    u.email = "account-new@example.com".into();
    u.account.email_change = None;
    u.version = 3;
    b.users.change_email(&u, 2).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));

    // Cleared entirely.
    u.account = AccountState::default();
    u.version = 4;
    b.users.update_user(&u, 3).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));
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

/// Messages queued with a record change come back when due, oldest first,
/// and the record lists them.
pub async fn mail_is_queued_with_the_record_and_due_in_order(b: &Backends) {
    let mut u = sample_user(41, "mail@example.com");
    b.users.create_user(&u).await.unwrap();
    let (m1, m2) = (sample_mail(1, u.id, T0), sample_mail(2, u.id, T0 + 1000));
    u.account.outbox = vec![m1.id, m2.id];
    u.version = 2;
    b.users
        .update_user_with_mail(&u, 1, &[m2.clone(), m1.clone()])
        .await
        .unwrap();
    assert_eq!(
        b.users
            .get_user(u.id)
            .await
            .unwrap()
            .unwrap()
            .account
            .outbox,
        vec![m1.id, m2.id]
    );
    assert_eq!(b.users.due_mail(T0 - 1, 10).await.unwrap(), vec![]);
    assert_eq!(b.users.due_mail(T0, 10).await.unwrap(), vec![m1.clone()]);
    assert_eq!(
        b.users.due_mail(T0 + 1000, 10).await.unwrap(),
        vec![m1.clone(), m2.clone()]
    );
    assert_eq!(b.users.due_mail(T0 + 1000, 1).await.unwrap(), vec![m1]);

    // An email change queues its messages the same way.
    let m3 = sample_mail(3, u.id, T0);
    u.email = "mail-new@example.com".into();
    u.account.outbox.push(m3.id);
    u.version = 3;
    b.users
        .change_email_with_mail(&u, 2, std::slice::from_ref(&m3))
        .await
        .unwrap();
    assert_eq!(b.users.due_mail(T0 + 1000, 10).await.unwrap().len(), 3);
}

/// A change that fails (stale version, taken address) queues nothing.
pub async fn mail_of_a_failed_write_is_not_queued(b: &Backends) {
    let mut u = sample_user(42, "nomail@example.com");
    b.users.create_user(&u).await.unwrap();
    b.users
        .create_user(&sample_user(43, "taken-by-other@example.com"))
        .await
        .unwrap();
    let m = sample_mail(4, u.id, T0);
    u.account.outbox = vec![m.id];
    u.version = 6;
    let err = b
        .users
        .update_user_with_mail(&u, 5, std::slice::from_ref(&m))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionConflict { .. }), "{err:?}");
    u.email = "taken-by-other@example.com".into();
    u.version = 2;
    let err = b
        .users
        .change_email_with_mail(&u, 1, std::slice::from_ref(&m))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    assert_eq!(b.users.due_mail(u64::MAX, 10).await.unwrap(), vec![]);
    assert!(
        b.users
            .get_user(u.id)
            .await
            .unwrap()
            .unwrap()
            .account
            .outbox
            .is_empty()
    );
}

/// One mailer at a time holds a message; a retry reschedules it and
/// releases the claim; a delete removes it for good.
pub async fn mail_claims_retries_and_deletes(b: &Backends) {
    let mut u = sample_user(44, "claims@example.com");
    b.users.create_user(&u).await.unwrap();
    let mut m = sample_mail(5, u.id, T0);
    u.account.outbox = vec![m.id];
    u.version = 2;
    b.users
        .update_user_with_mail(&u, 1, std::slice::from_ref(&m))
        .await
        .unwrap();
    assert!(b.users.claim_mail(&m, T0, T0 + 1000).await.unwrap());
    assert!(
        !b.users.claim_mail(&m, T0 + 1, T0 + 2000).await.unwrap(),
        "held"
    );
    assert!(
        b.users.claim_mail(&m, T0 + 1001, T0 + 3000).await.unwrap(),
        "expired"
    );

    m.due_at_ms = T0 + 60_000;
    m.attempts = 1;
    b.users.retry_mail(&m).await.unwrap();
    assert_eq!(b.users.due_mail(T0 + 59_999, 10).await.unwrap(), vec![]);
    assert_eq!(
        b.users.due_mail(T0 + 60_000, 10).await.unwrap(),
        vec![m.clone()]
    );
    assert!(
        b.users.claim_mail(&m, T0 + 1002, T0 + 4000).await.unwrap(),
        "released"
    );

    b.users.delete_mail(&m).await.unwrap();
    assert_eq!(b.users.due_mail(u64::MAX, 10).await.unwrap(), vec![]);
    assert!(
        !b.users
            .claim_mail(&m, T0 + 9000, T0 + 10_000)
            .await
            .unwrap(),
        "gone"
    );
}

pub async fn user_update_checks_version(b: &Backends) {
    let mut u = sample_user(3, "ver@example.com");
    b.users.create_user(&u).await.unwrap();
    u.name = Some("Renamed".into());
    u.version = 2;
    b.users.update_user(&u, 1).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));

    let mut stale = u.clone();
    stale.name = Some("Stale".into());
    stale.version = 2;
    let err = b.users.update_user(&stale, 1).await.unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { expected: 1 }),
        "{err:?}"
    );
    assert_eq!(
        b.users
            .get_user(u.id)
            .await
            .unwrap()
            .unwrap()
            .name
            .as_deref(),
        Some("Renamed")
    );

    let ghost = sample_user(99, "ghost@example.com");
    let err = b.users.update_user(&ghost, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
}

/// An email change moves the index: the new email finds the user, the old
/// one nobody, and the old one is free for another user.
pub async fn user_change_email_moves_the_index(b: &Backends) {
    let mut u = sample_user(4, "old@example.com");
    b.users.create_user(&u).await.unwrap();
    u.email = "new@example.com".into();
    u.version = 2;
    b.users.change_email(&u, 1).await.unwrap();
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        b.users
            .find_user_id_by_email("new@example.com")
            .await
            .unwrap(),
        Some(u.id)
    );
    assert_eq!(
        b.users
            .find_user_id_by_email("old@example.com")
            .await
            .unwrap(),
        None
    );
    let other = sample_user(5, "old@example.com");
    b.users.create_user(&other).await.unwrap();
    assert_eq!(
        b.users
            .find_user_id_by_email("old@example.com")
            .await
            .unwrap(),
        Some(other.id)
    );
}

/// Changing to another user's email fails with `EmailTaken`; both users and
/// both index entries stay as they were.
pub async fn user_change_email_to_a_taken_address_changes_nothing(b: &Backends) {
    let first = sample_user(6, "first@example.com");
    let second = sample_user(7, "second@example.com");
    b.users.create_user(&first).await.unwrap();
    b.users.create_user(&second).await.unwrap();
    let mut moved = first.clone();
    moved.email = "second@example.com".into();
    moved.version = 2;
    let err = b.users.change_email(&moved, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::EmailTaken), "{err:?}");
    assert_eq!(
        b.users.get_user(first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        b.users.get_user(second.id).await.unwrap(),
        Some(second.clone())
    );
    for (email, id) in [
        ("first@example.com", first.id),
        ("second@example.com", second.id),
    ] {
        assert_eq!(
            b.users.find_user_id_by_email(email).await.unwrap(),
            Some(id)
        );
    }
}

/// An email change based on a stale version, or of an unknown user, fails
/// and claims nothing.
pub async fn user_change_email_checks_version(b: &Backends) {
    let u = sample_user(8, "stay@example.com");
    b.users.create_user(&u).await.unwrap();
    let mut stale = u.clone();
    stale.email = "elsewhere@example.com".into();
    stale.version = 6;
    let err = b.users.change_email(&stale, 5).await.unwrap_err();
    assert!(
        matches!(err, StoreError::VersionConflict { expected: 5 }),
        "{err:?}"
    );
    let mut ghost = sample_user(98, "ghost-new@example.com");
    ghost.version = 2;
    let err = b.users.change_email(&ghost, 1).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(b.users.get_user(u.id).await.unwrap(), Some(u.clone()));
    for email in ["elsewhere@example.com", "ghost-new@example.com"] {
        assert_eq!(b.users.find_user_id_by_email(email).await.unwrap(), None);
    }
    // The address stayed free.
    b.users
        .create_user(&sample_user(9, "elsewhere@example.com"))
        .await
        .unwrap();
}

/// Ten users change to one email at once: exactly one gets it; the others
/// keep their own.
pub async fn user_concurrent_changes_to_one_email_exactly_one_wins(b: &Backends) {
    let mut tasks = Vec::new();
    for n in 0..10u8 {
        let u = sample_user(n + 70, &format!("before{n}@example.com"));
        b.users.create_user(&u).await.unwrap();
        let users = b.users.clone();
        tasks.push(tokio::spawn(async move {
            let mut moved = u.clone();
            moved.email = "prize@example.com".into();
            moved.version = 2;
            (u, users.change_email(&moved, 1).await)
        }));
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for t in tasks {
        let (u, r) = t.await.unwrap();
        match r {
            Ok(()) => winners.push(u),
            Err(StoreError::EmailTaken) => losers.push(u),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one change wins");
    let w = &winners[0];
    assert_eq!(
        b.users
            .find_user_id_by_email("prize@example.com")
            .await
            .unwrap(),
        Some(w.id)
    );
    assert_eq!(
        b.users.get_user(w.id).await.unwrap().unwrap().email,
        "prize@example.com"
    );
    for l in losers {
        assert_eq!(b.users.get_user(l.id).await.unwrap(), Some(l.clone()));
        assert_eq!(
            b.users.find_user_id_by_email(&l.email).await.unwrap(),
            Some(l.id)
        );
    }
}

/// Unknown ids and emails read as `None`.
pub async fn user_unknown_reads_none(b: &Backends) {
    assert_eq!(b.users.get_user(UserId([42; 16])).await.unwrap(), None);
    assert_eq!(
        b.users
            .find_user_id_by_email("nobody@example.com")
            .await
            .unwrap(),
        None
    );
}

/// A paged scan visits every user exactly once, and ends with an empty page.
pub async fn user_scan_visits_every_user_once(b: &Backends) {
    let mut expected = HashSet::new();
    for n in 40..47u8 {
        let u = sample_user(n, &format!("scan-{n}@example.com"));
        b.users.create_user(&u).await.unwrap();
        expected.insert(u.id);
    }
    let mut seen = HashSet::new();
    let mut after = None;
    for _ in 0..20 {
        let page = b.users.scan_users(after, 3).await.unwrap();
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in &page {
            assert!(seen.insert(u.id), "{:?} visited twice", u.id);
        }
    }
    // Other checks may share the store: every user of this one was seen.
    assert!(
        expected.is_subset(&seen),
        "{expected:?} not all in {seen:?}"
    );
}

/// The session life cycle.
pub async fn session_create_get_list_delete(b: &Backends) {
    let s1 = sample_session(1, 1, 1);
    let mut s2 = sample_session(1, 2, 2);
    s2.created_at_ms = T0 + 5;
    b.tokens.create_session(&s1, 0).await.unwrap();
    b.tokens.create_session(&s2, 0).await.unwrap();
    assert_eq!(
        b.tokens.get_session(s1.user_id, s1.id, T0).await.unwrap(),
        Some(s1.clone())
    );
    let list = b.tokens.list_sessions(s1.user_id, T0).await.unwrap();
    assert_eq!(
        list.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![s1.id, s2.id]
    );
    assert!(b.tokens.delete_session(s1.user_id, s1.id).await.unwrap());
    assert!(!b.tokens.delete_session(s1.user_id, s1.id).await.unwrap());
    assert_eq!(
        b.tokens.get_session(s1.user_id, s1.id, T0).await.unwrap(),
        None
    );
    assert_eq!(
        b.tokens.list_sessions(s1.user_id, T0).await.unwrap(),
        vec![s2]
    );
}

/// Expired sessions (sliding or absolute) read as absent and are not listed.
pub async fn session_expired_is_invisible(b: &Backends) {
    let s = sample_session(2, 1, 1);
    b.tokens.create_session(&s, 0).await.unwrap();
    let later = s.expires_at_ms;
    assert_eq!(
        b.tokens.get_session(s.user_id, s.id, later).await.unwrap(),
        None
    );
    assert!(
        b.tokens
            .list_sessions(s.user_id, later)
            .await
            .unwrap()
            .is_empty()
    );
    let r = b
        .tokens
        .rotate_refresh(&rotate(&s, 1, 2, later))
        .await
        .unwrap();
    assert_eq!(r, RotateOutcome::Invalid);
}

/// Logout-all deletes every session of the user and nothing else.
pub async fn session_delete_all_is_scoped_to_user(b: &Backends) {
    for sid in 1..=3 {
        b.tokens
            .create_session(&sample_session(5, sid, sid), 0)
            .await
            .unwrap();
    }
    let other = sample_session(6, 1, 1);
    b.tokens.create_session(&other, 0).await.unwrap();
    let deleted: HashSet<_> = b
        .tokens
        .delete_all_sessions(UserId([5; 16]))
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: HashSet<_> = (1..=3).map(|n| SessionId([n; 16])).collect();
    assert_eq!(deleted, expected);
    assert!(
        b.tokens
            .list_sessions(UserId([5; 16]), T0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        b.tokens.list_sessions(other.user_id, T0).await.unwrap(),
        vec![other]
    );
    assert!(
        b.tokens
            .delete_all_sessions(UserId([5; 16]))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A new session past the cap ends the least recently used others, in the
/// same step; the new session always stays, and other users are untouched.
pub async fn session_cap_ends_the_least_recently_used(b: &Backends) {
    let user = UserId([9; 16]);
    let mut ids = Vec::new();
    for n in 1..=3u8 {
        let mut s = sample_session(9, n, n);
        s.created_at_ms = T0 + u64::from(n);
        s.last_used_at_ms = T0 + u64::from(n);
        s.expires_at_ms = T0 + 30 * DAY + u64::from(n);
        assert!(b.tokens.create_session(&s, 3).await.unwrap().is_empty());
        ids.push(s.id);
    }
    b.tokens
        .create_session(&sample_session(10, 1, 1), 3)
        .await
        .unwrap();
    // Session 1 is used again: session 2 is now the least recently used.
    let r = b
        .tokens
        .rotate_refresh(&rotate(&sample_session(9, 1, 1), 1, 11, T0 + 10))
        .await
        .unwrap();
    assert!(matches!(r, RotateOutcome::Rotated(_)), "{r:?}");
    let mut fourth = sample_session(9, 4, 4);
    fourth.created_at_ms = T0 + 20;
    fourth.last_used_at_ms = T0 + 20;
    fourth.expires_at_ms = T0 + 30 * DAY + 20;
    let evicted = b.tokens.create_session(&fourth, 3).await.unwrap();
    assert_eq!(evicted, vec![ids[1]]);
    let live: Vec<SessionId> = b
        .tokens
        .list_sessions(user, T0 + 20)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![ids[0], ids[2], fourth.id]);
    assert_eq!(
        b.tokens
            .list_sessions(UserId([10; 16]), T0)
            .await
            .unwrap()
            .len(),
        1
    );
    // A cap of one keeps only the new session.
    let mut fifth = sample_session(9, 5, 5);
    fifth.last_used_at_ms = T0 + 30;
    fifth.expires_at_ms = T0 + 30 * DAY + 30;
    assert_eq!(b.tokens.create_session(&fifth, 1).await.unwrap().len(), 3);
    let live = b.tokens.list_sessions(user, T0 + 30).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].amr, vec!["pwd".to_owned(), "otp".to_owned()]);
    assert_eq!(live[0].auth_time_ms, T0 - 5);
}

/// The shared GCRA limiter: a burst passes, the next request is told how
/// long to wait, the rate recovers, and keys are independent.
pub async fn rate_limit_admits_a_burst_then_asks_to_wait(b: &Backends) {
    let limit = RateLimit {
        count: 1,
        period_ms: 60_000,
        burst: 2,
    };
    let key = "conformance:mail:abc";
    assert_eq!(b.tokens.rate_limit(key, T0, &limit).await.unwrap(), None);
    assert_eq!(b.tokens.rate_limit(key, T0, &limit).await.unwrap(), None);
    let wait = b.tokens.rate_limit(key, T0, &limit).await.unwrap();
    assert_eq!(wait, Some(60_000));
    assert_eq!(
        b.tokens.rate_limit(key, T0 + 30_000, &limit).await.unwrap(),
        Some(30_000)
    );
    assert_eq!(
        b.tokens
            .rate_limit("conformance:mail:other", T0, &limit)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.tokens.rate_limit(key, T0 + 60_000, &limit).await.unwrap(),
        None
    );
    assert!(
        b.tokens
            .rate_limit(key, T0 + 60_000, &limit)
            .await
            .unwrap()
            .is_some()
    );
}

/// Rotating the current token installs the new one.
pub async fn rotate_current_token(b: &Backends) {
    let s = sample_session(7, 1, 1);
    b.tokens.create_session(&s, 0).await.unwrap();
    let now = T0 + 1_000;
    let r = b
        .tokens
        .rotate_refresh(&rotate(&s, 1, 2, now))
        .await
        .unwrap();
    let RotateOutcome::Rotated(after) = r else {
        panic!("expected Rotated, got {r:?}");
    };
    assert_eq!(after.refresh_hash, [2; 32]);
    assert_eq!(after.generation, 1);
    assert_eq!(after.rotated_at_ms, now);
    assert_eq!(after.last_used_at_ms, now);
    assert_eq!(after.expires_at_ms, now + 30 * DAY);
    let stored = b.tokens.get_session(s.user_id, s.id, now).await.unwrap();
    assert_eq!(stored, Some(after));
    // The new token rotates again, at the next generation.
    let r = b
        .tokens
        .rotate_refresh(&rotate_at(&s, 2, 1, 3, now + 10))
        .await
        .unwrap();
    assert!(matches!(r, RotateOutcome::Rotated(ref x) if x.generation == 2));
}

/// The sliding expiry never passes the session's absolute end.
pub async fn rotate_caps_expiry_at_session_max(b: &Backends) {
    let mut s = sample_session(7, 2, 1);
    s.max_expires_at_ms = T0 + DAY;
    b.tokens.create_session(&s, 0).await.unwrap();
    let r = b
        .tokens
        .rotate_refresh(&rotate(&s, 1, 2, T0 + 1))
        .await
        .unwrap();
    assert!(
        matches!(r, RotateOutcome::Rotated(ref x) if x.expires_at_ms == T0 + DAY),
        "{r:?}"
    );
}

/// A rotation based on an old read (hash or generation) changes nothing.
pub async fn rotate_with_a_stale_expectation_conflicts(b: &Backends) {
    let s = sample_session(8, 1, 1);
    b.tokens.create_session(&s, 0).await.unwrap();
    b.tokens
        .rotate_refresh(&rotate(&s, 1, 2, T0 + 1))
        .await
        .unwrap();
    for req in [
        rotate_at(&s, 1, 0, 3, T0 + 2),
        rotate_at(&s, 2, 0, 3, T0 + 2),
        rotate_at(&s, 1, 1, 3, T0 + 2),
        rotate_at(&s, 9, 1, 3, T0 + 2),
    ] {
        assert_eq!(
            b.tokens.rotate_refresh(&req).await.unwrap(),
            RotateOutcome::Conflict
        );
    }
    let stored = b
        .tokens
        .get_session(s.user_id, s.id, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.refresh_hash, stored.generation), ([2; 32], 1));
}

/// Missing and expired sessions are invalid.
pub async fn rotate_missing_or_expired_is_invalid(b: &Backends) {
    let missing = sample_session(11, 2, 1);
    let r = b
        .tokens
        .rotate_refresh(&rotate(&missing, 1, 2, T0 + 1))
        .await
        .unwrap();
    assert_eq!(r, RotateOutcome::Invalid);
    let s = sample_session(11, 3, 1);
    b.tokens.create_session(&s, 0).await.unwrap();
    let r = b
        .tokens
        .rotate_refresh(&rotate(&s, 1, 2, s.expires_at_ms))
        .await
        .unwrap();
    assert_eq!(r, RotateOutcome::Invalid);
}

/// Parallel rotations of one token: exactly one wins, the others conflict.
pub async fn rotate_concurrent_exactly_one_wins(b: &Backends) {
    let s = sample_session(12, 1, 1);
    b.tokens.create_session(&s, 0).await.unwrap();
    let mut tasks = Vec::new();
    for n in 0..20u8 {
        let tokens = b.tokens.clone();
        let req = rotate(&s, 1, 100 + n, T0 + 1_000);
        tasks.push(tokio::spawn(
            async move { tokens.rotate_refresh(&req).await },
        ));
    }
    let mut rotated = Vec::new();
    for t in tasks {
        match t.await.unwrap().unwrap() {
            RotateOutcome::Rotated(x) => rotated.push(x.refresh_hash),
            RotateOutcome::Conflict => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(rotated.len(), 1);
    let stored = b
        .tokens
        .get_session(s.user_id, s.id, T0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.refresh_hash, rotated[0]);
    assert_eq!(stored.generation, 1);
}

/// The chain key is created by the first caller and returned to every caller.
pub async fn refresh_chain_key_is_created_once(b: &Backends) {
    let first = b.tokens.refresh_chain_key([1; 32]).await.unwrap();
    assert_eq!(first, [1; 32]);
    assert_eq!(b.tokens.refresh_chain_key([2; 32]).await.unwrap(), [1; 32]);
    let mut tasks = Vec::new();
    for n in 3..10u8 {
        let tokens = b.tokens.clone();
        tasks.push(tokio::spawn(async move {
            tokens.refresh_chain_key([n; 32]).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), [1; 32]);
    }
}

/// Failures lock the key at the limit, with doubling lock durations.
pub async fn lockout_counts_locks_and_backs_off(b: &Backends) {
    let p = LockoutPolicy::default();
    let key = "locked@example.com";
    let mut now = T0;
    assert_eq!(
        b.tokens
            .lockout_status(key, now)
            .await
            .unwrap()
            .locked_until_ms,
        None
    );
    for i in 1..=4 {
        let st = b.tokens.record_login_failure(key, now, &p).await.unwrap();
        assert_eq!(st.failures, i);
        assert_eq!(st.locked_until_ms, None);
        now += 1_000;
    }
    let st = b.tokens.record_login_failure(key, now, &p).await.unwrap();
    assert_eq!(st.locked_until_ms, Some(now + 60_000));
    assert_eq!(st.failures, 5, "the locking failure is counted");
    // A failure during the lock is not counted and does not extend it.
    let during = b
        .tokens
        .record_login_failure(key, now + 1, &p)
        .await
        .unwrap();
    assert_eq!(during.failures, 0);
    assert_eq!(during.locked_until_ms, Some(now + 60_000));
    let status = b.tokens.lockout_status(key, now + 59_999).await.unwrap();
    assert_eq!(status.locked_until_ms, Some(now + 60_000));
    assert_eq!(
        b.tokens
            .lockout_status(key, now + 60_000)
            .await
            .unwrap()
            .locked_until_ms,
        None,
        "the lock ends with time"
    );
    // Five more failures lock again, twice as long.
    now += 60_000;
    let mut last = Default::default();
    for _ in 0..5 {
        last = b.tokens.record_login_failure(key, now, &p).await.unwrap();
    }
    assert_eq!(last.locked_until_ms, Some(now + 120_000));
    // Success clears everything.
    b.tokens.clear_login_failures(key).await.unwrap();
    let st = b.tokens.lockout_status(key, now).await.unwrap();
    assert_eq!(st.locked_until_ms, None);
    assert_eq!(st.failures, 0);
    // Other keys are independent.
    let other = b
        .tokens
        .lockout_status("other@example.com", now)
        .await
        .unwrap();
    assert_eq!(other.failures, 0);
}

/// Failures older than the window are forgotten.
pub async fn lockout_window_expires_failures(b: &Backends) {
    let p = LockoutPolicy::default();
    let key = "window@example.com";
    for _ in 0..4 {
        b.tokens.record_login_failure(key, T0, &p).await.unwrap();
    }
    let later = T0 + p.window_ms + 1;
    let st = b.tokens.record_login_failure(key, later, &p).await.unwrap();
    assert_eq!(st.failures, 1);
    assert_eq!(st.locked_until_ms, None);
}

/// Parallel failures are each counted: the limit cannot be raced past.
pub async fn lockout_concurrent_failures_are_all_counted(b: &Backends) {
    let p = LockoutPolicy {
        max_failures: 1_000,
        ..LockoutPolicy::default()
    };
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let tokens = b.tokens.clone();
        tasks.push(tokio::spawn(async move {
            tokens
                .record_login_failure("parallel@example.com", T0, &p)
                .await
                .unwrap()
                .failures
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<u32>>());
}

/// Signing keys persist, replace by kid, and delete.
pub async fn signing_keys_save_load_replace_delete(b: &Backends) {
    let k1 = SigningKeyRecord {
        kid: "k1".into(),
        pkcs8: vec![1; 83],
        public: [1; 32],
        created_at_ms: T0,
        not_before_ms: T0,
        expires_at_ms: None,
    };
    let mut k2 = SigningKeyRecord {
        kid: "k2".into(),
        pkcs8: vec![2; 83],
        public: [2; 32],
        created_at_ms: T0,
        not_before_ms: T0 + DAY,
        expires_at_ms: None,
    };
    b.tokens.save_signing_key(&k1).await.unwrap();
    b.tokens.save_signing_key(&k2).await.unwrap();
    let mut keys = b.tokens.load_signing_keys().await.unwrap();
    keys.sort_by(|a, b| a.kid.cmp(&b.kid));
    assert_eq!(keys, vec![k1.clone(), k2.clone()]);
    k2.expires_at_ms = Some(T0 + 2 * DAY);
    b.tokens.save_signing_key(&k2).await.unwrap();
    b.tokens.delete_signing_key("k1").await.unwrap();
    assert_eq!(b.tokens.load_signing_keys().await.unwrap(), vec![k2]);
}

/// Expired sessions are removed, by `purge_expired` or by the backend's own
/// expiry (Redis TTLs), within a second; live ones are kept. The listing
/// reads at the creation time, so only physical removal hides the dead one.
pub async fn purge_removes_expired_sessions(b: &Backends) {
    let live = sample_session(20, 1, 1);
    let mut dead = sample_session(20, 2, 2);
    dead.expires_at_ms = T0 + 10;
    b.tokens.create_session(&live, 0).await.unwrap();
    b.tokens.create_session(&dead, 0).await.unwrap();
    let mut list = Vec::new();
    for _ in 0..100 {
        b.tokens.purge_expired(T0 + 11).await.unwrap();
        list = b.tokens.list_sessions(live.user_id, T0).await.unwrap();
        if list.len() < 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(list, vec![live]);
}

/// Both stores answer readiness and flush.
pub async fn ping_and_flush(b: &Backends) {
    b.users.ping().await.unwrap();
    b.tokens.ping().await.unwrap();
    b.users.flush().await.unwrap();
    b.tokens.flush().await.unwrap();
}
