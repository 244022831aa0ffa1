//! Key-material checks: the refresh-chain key is created once, and signing
//! keys are saved, replaced by kid and deleted.

use super::{Backends, DAY, T0};
use crate::model::SigningKeyRecord;

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
