//! Refresh-token rotation checks: the current token rotates, expiry is
//! capped, stale or missing expectations fail, and concurrent rotations of
//! one token have exactly one winner.

use super::{Backends, DAY, T0, rotate, rotate_at, sample_session};
use crate::model::RotateOutcome;

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
