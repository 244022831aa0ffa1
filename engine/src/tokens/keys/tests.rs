use super::*;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn policy() -> RotationPolicy {
    RotationPolicy {
        interval: Duration::from_millis(30 * DAY),
        publish_lead: Duration::from_millis(HOUR),
        retire_after: Duration::from_millis(HOUR),
    }
}

fn apply(keys: &mut Vec<SigningKeyRecord>, changes: Vec<KeyChange>) {
    for c in changes {
        match c {
            KeyChange::Save(k) => {
                keys.retain(|x| x.kid != k.kid);
                keys.push(k);
            }
            KeyChange::Delete(kid) => keys.retain(|x| x.kid != kid),
        }
    }
}

#[test]
fn bootstrap_creates_a_signer_and_a_published_successor() {
    let rng = SystemRandom::new();
    let t0 = 1_800_000_000_000;
    let mut keys = Vec::new();
    let changes = plan(&keys, t0, &policy(), &rng).unwrap();
    apply(&mut keys, changes);
    assert_eq!(keys.len(), 2);
    let ring = KeyRing::load(keys.clone(), t0);
    let signer = ring.signer(t0).unwrap().kid().to_owned();
    let next = keys.iter().find(|k| k.kid != signer).unwrap();
    assert_eq!(next.not_before_ms, t0 + 30 * DAY);
    let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&signer.as_str()) && kids.contains(&next.kid.as_str()),
        "the successor is published before it signs"
    );
    // Stable: planning again changes nothing.
    assert!(plan(&keys, t0 + 1, &policy(), &rng).unwrap().is_empty());
}

#[test]
fn rotation_promotes_the_successor_retires_and_later_deletes_the_old_key() {
    let rng = SystemRandom::new();
    let t0 = 1_800_000_000_000;
    let mut keys = Vec::new();
    let changes = plan(&keys, t0, &policy(), &rng).unwrap();
    apply(&mut keys, changes);
    let first = KeyRing::load(keys.clone(), t0)
        .signer(t0)
        .unwrap()
        .kid()
        .to_owned();
    let t1 = t0 + 30 * DAY;
    let changes = plan(&keys, t1, &policy(), &rng).unwrap();
    apply(&mut keys, changes);
    let ring = KeyRing::load(keys.clone(), t1);
    let second = ring.signer(t1).unwrap().kid().to_owned();
    assert_ne!(first, second);
    assert!(ring.verifier(&first).is_some(), "old key still verifies");
    assert_eq!(keys.len(), 3, "old, current, and a new successor");
    let old = keys.iter().find(|k| k.kid == first).unwrap();
    assert_eq!(old.expires_at_ms, Some(t1 + HOUR));
    let t2 = t1 + HOUR;
    let changes = plan(&keys, t2, &policy(), &rng).unwrap();
    apply(&mut keys, changes);
    assert!(keys.iter().all(|k| k.kid != first), "retired key deleted");
    assert!(KeyRing::load(keys, t2).verifier(&first).is_none());
}

#[test]
fn damaged_keys_are_skipped() {
    let rng = SystemRandom::new();
    let mut k = generate(&rng, 0, 0).unwrap();
    k.pkcs8 = vec![1, 2, 3];
    let ring = KeyRing::load(vec![k], 0);
    assert!(ring.is_empty());
    assert!(ring.signer(0).is_none());
}

/// A throwaway key from `openssl genpkey -algorithm ed25519` (PKCS#8 v1,
/// without the public key), as an operator would put in a Secret.
const OPENSSL_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEII6UuIV4l3P3GX+SUudug4OMn3SJGLsJi0fUo6XXm0bx
-----END PRIVATE KEY-----
";

fn pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
}

#[test]
fn a_key_directory_signs_with_signing_pem_and_publishes_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let generated = generate(&SystemRandom::new(), 0, 0).unwrap();
    std::fs::write(dir.path().join("signing.pem"), OPENSSL_KEY).unwrap();
    std::fs::write(dir.path().join("next.pem"), pem(&generated.pkcs8)).unwrap();
    // What a Secret volume also holds, and what is not a key.
    std::fs::create_dir(dir.path().join("..data")).unwrap();
    std::fs::write(dir.path().join("README"), "not a key").unwrap();

    let now = 1_800_000_000_000;
    let records = load_dir(dir.path(), now).unwrap();
    assert_eq!(records.len(), 2);
    let ring = KeyRing::load(records, now);
    let signer = ring.signer(now).unwrap().kid().to_owned();
    assert_ne!(signer, generated.kid, "next.pem must not sign");
    // Still the signer far in the future: nothing rotates by itself.
    assert_eq!(ring.signer(u64::MAX - 1).unwrap().kid(), signer);
    assert!(ring.verifier(&generated.kid).is_some());
    let jwks: serde_json::Value = serde_json::from_slice(&ring.jwks()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&signer.as_str()) && kids.contains(&generated.kid.as_str()));
    // The kid is the key's RFC 7638 thumbprint, as for generated keys.
    let reread = load_dir(dir.path(), now + 1).unwrap();
    assert!(reread.iter().any(|r| r.kid == signer));
}

#[test]
fn a_key_directory_without_signing_pem_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("next.pem"), OPENSSL_KEY).unwrap();
    let e = load_dir(dir.path(), 0).unwrap_err();
    assert!(e.contains("has no signing.pem"), "{e}");
    let e = load_dir(&dir.path().join("missing"), 0).unwrap_err();
    assert!(e.contains("cannot read signing keys directory"), "{e}");
}

#[test]
fn a_bad_key_file_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signing.pem"), OPENSSL_KEY).unwrap();
    std::fs::write(
        dir.path().join("old.pem"),
        "-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = load_dir(dir.path(), 0).unwrap_err();
    assert!(e.contains("old.pem") && e.contains("not base64"), "{e}");
    std::fs::write(
        dir.path().join("old.pem"),
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = load_dir(dir.path(), 0).unwrap_err();
    assert!(e.contains("old.pem") && e.contains("encrypted"), "{e}");
    // Valid base64 of something that is not an Ed25519 key.
    std::fs::write(dir.path().join("old.pem"), pem(b"not a key at all")).unwrap();
    let e = load_dir(dir.path(), 0).unwrap_err();
    assert!(e.contains("old.pem") && e.contains("not an Ed25519"), "{e}");
}
