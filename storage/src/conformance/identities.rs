//! The identity index (social login) and the stash of flow state: claims
//! are unique under concurrency, releases only the holder's, a stashed value
//! is taken once and not after it expires.

use std::sync::Arc;

use super::{Backends, T0};
use crate::model::UserId;

/// A claim holds, a second user's claim answers the holder, a release by a
/// non-holder changes nothing, and a release frees the identity.
pub async fn identity_claim_find_release(b: &Backends) {
    let (a, other) = (UserId([1; 16]), UserId([2; 16]));
    assert_eq!(b.users.find_identity("corp", "s-1").await.unwrap(), None);
    let c = b.users.claim_identity("corp", "s-1", a, T0).await.unwrap();
    assert_eq!((c.user_id, c.claimed_at_ms), (a, T0));
    // Claiming again for the holder is a no-op that answers the holder.
    let again = b
        .users
        .claim_identity("corp", "s-1", a, T0 + 5)
        .await
        .unwrap();
    assert_eq!(again.user_id, a);
    let lost = b
        .users
        .claim_identity("corp", "s-1", other, T0 + 9)
        .await
        .unwrap();
    assert_eq!((lost.user_id, lost.claimed_at_ms), (a, T0));
    let found = b.users.find_identity("corp", "s-1").await.unwrap().unwrap();
    assert_eq!((found.user_id, found.claimed_at_ms), (a, T0));
    // The same subject at another provider, and another subject, are free.
    assert_eq!(b.users.find_identity("other", "s-1").await.unwrap(), None);
    assert_eq!(b.users.find_identity("corp", "s-10").await.unwrap(), None);
    assert!(
        !b.users
            .release_identity("corp", "s-1", other)
            .await
            .unwrap()
    );
    assert_eq!(
        b.users
            .find_identity("corp", "s-1")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        a
    );
    assert!(b.users.release_identity("corp", "s-1", a).await.unwrap());
    assert_eq!(b.users.find_identity("corp", "s-1").await.unwrap(), None);
    assert!(!b.users.release_identity("corp", "s-1", a).await.unwrap());
    let now_other = b
        .users
        .claim_identity("corp", "s-1", other, T0 + 20)
        .await
        .unwrap();
    assert_eq!(now_other.user_id, other);
}

/// Sixteen concurrent claims of one identity for sixteen users: all agree
/// on one holder, and the index names it.
pub async fn identity_concurrent_claims_exactly_one_wins(b: &Backends) {
    let users = Arc::clone(&b.users);
    let tasks: Vec<_> = (0..16u8)
        .map(|n| {
            let users = Arc::clone(&users);
            tokio::spawn(async move {
                users
                    .claim_identity("corp", "contended", UserId([n + 1; 16]), T0)
                    .await
                    .unwrap()
                    .user_id
            })
        })
        .collect();
    let mut holders = Vec::new();
    for t in tasks {
        holders.push(t.await.unwrap());
    }
    holders.dedup();
    assert_eq!(holders.len(), 1, "every claimant sees the one holder");
    assert_eq!(
        b.users
            .find_identity("corp", "contended")
            .await
            .unwrap()
            .unwrap()
            .user_id,
        holders[0]
    );
}

/// A stashed value is taken once; a second stash under a held key is
/// refused; an expired value is not returned; concurrent takes get it once.
pub async fn stash_is_taken_once_and_expires(b: &Backends) {
    let k = [7u8; 32];
    assert!(b.tokens.stash(&k, b"state", T0, T0 + 60_000).await.unwrap());
    assert!(!b.tokens.stash(&k, b"other", T0, T0 + 60_000).await.unwrap());
    assert_eq!(
        b.tokens.take_stashed(&k, T0 + 1).await.unwrap().as_deref(),
        Some(&b"state"[..])
    );
    assert_eq!(b.tokens.take_stashed(&k, T0 + 2).await.unwrap(), None);
    // Expired by the caller's clock: not returned.
    let e = [8u8; 32];
    assert!(b.tokens.stash(&e, b"late", T0, T0 + 60_000).await.unwrap());
    assert_eq!(b.tokens.take_stashed(&e, T0 + 60_000).await.unwrap(), None);
    // Concurrent takes: exactly one gets it.
    let c = [9u8; 32];
    assert!(
        b.tokens
            .stash(&c, &[1; 300], T0, T0 + 60_000)
            .await
            .unwrap()
    );
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let tokens = Arc::clone(&b.tokens);
            tokio::spawn(async move { tokens.take_stashed(&c, T0 + 1).await.unwrap() })
        })
        .collect();
    let mut got = 0;
    for t in tasks {
        if let Some(v) = t.await.unwrap() {
            assert_eq!(v, vec![1; 300]);
            got += 1;
        }
    }
    assert_eq!(got, 1);
}
