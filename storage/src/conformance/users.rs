//! User-store checks: creation and its email uniqueness, reads, versioned
//! updates, the account state kept with the record, and the paged scan.

use std::collections::HashSet;

use super::{Backends, DAY, T0, sample_user};
use crate::StoreError;
use crate::model::UserId;

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
        passkeys: vec![crate::StoredPasskey {
            id: vec![1; 32],
            name: "Laptop".into(),
            created_at_ms: T0,
            last_used_at_ms: Some(T0 + 1),
            backed_up: true,
            sealed: vec![2; 300],
        }],
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
