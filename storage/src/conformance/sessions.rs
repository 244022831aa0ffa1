//! Session checks: the life cycle, expiry, logout-all, the per-user cap,
//! and the purge of expired sessions.

use std::collections::HashSet;

use super::{Backends, DAY, T0, rotate, sample_session};
use crate::model::{RotateOutcome, SessionId, UserId};

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
