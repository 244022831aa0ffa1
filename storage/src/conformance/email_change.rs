//! Email-change checks: the email index moves with the user, a taken
//! address or a stale version changes nothing, and concurrent changes to
//! one address have exactly one winner.

use super::{Backends, sample_user};
use crate::StoreError;

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
