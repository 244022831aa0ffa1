use std::os::unix::fs::PermissionsExt;

use super::*;

const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "HxwdHhsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

#[test]
fn a_sealed_secret_opens_for_its_owner_only() {
    let keys = DataKeys::from_config(K1).unwrap();
    let sealed = keys.seal(b"totp secret 20 bytes", b"user-1").unwrap();
    assert_ne!(&sealed[1 + ID_LEN + NONCE_LEN..], b"totp secret 20 bytes");
    assert_eq!(
        &keys.open(&sealed, b"user-1").unwrap()[..],
        b"totp secret 20 bytes"
    );
    assert_eq!(
        keys.open(&sealed, b"user-2").unwrap_err(),
        DataKeyError::Corrupt
    );
    // Two seals of one value differ (random nonces).
    assert_ne!(
        sealed,
        keys.seal(b"totp secret 20 bytes", b"user-1").unwrap()
    );
    // Any flipped bit is detected.
    for i in [0, 5, sealed.len() / 2, sealed.len() - 1] {
        let mut bad = sealed.clone();
        bad[i] ^= 1;
        assert!(keys.open(&bad, b"user-1").is_err(), "byte {i}");
    }
    assert_eq!(
        keys.open(&sealed[..10], b"user-1").unwrap_err(),
        DataKeyError::Corrupt
    );
}

#[test]
fn rotation_seals_with_the_first_key_and_opens_with_any() {
    let old = DataKeys::from_config(K1).unwrap();
    let sealed_old = old.seal(b"s", b"u").unwrap();
    let both = DataKeys::from_config(&format!("{K2}, {K1}")).unwrap();
    assert_eq!(&both.open(&sealed_old, b"u").unwrap()[..], b"s");
    assert!(both.is_stale(&sealed_old));
    let sealed_new = both.seal(b"s", b"u").unwrap();
    assert!(!both.is_stale(&sealed_new));
    // The old configuration alone does not know the new key, and says so.
    assert!(matches!(
        old.open(&sealed_new, b"u"),
        Err(DataKeyError::UnknownKey(_))
    ));
}

#[test]
fn bad_configured_keys_are_refused_with_the_reason() {
    for (value, reason) in [
        ("", "no key given"),
        ("not base64!", "not base64"),
        ("AAECAwQ=", "must be 32 bytes"),
    ] {
        let e = DataKeys::from_config(value).unwrap_err().to_string();
        assert!(e.contains(reason), "{value:?}: {e}");
    }
    // Debug never shows a key.
    let shown = format!("{:?}", DataKeys::from_config(K1).unwrap());
    assert!(!shown.contains(K1) && shown.contains("ids"), "{shown}");
}

#[test]
fn the_embedded_key_is_generated_once_owner_only_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    let first = DataKeys::load_or_create(&keys_dir).unwrap();
    let sealed = first.seal(b"secret", b"u").unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&keys_dir.join(KEY_FILE)), 0o600);
    assert_eq!(mode(&keys_dir), 0o700);
    // A restart reads the same key back.
    let again = DataKeys::load_or_create(&keys_dir).unwrap();
    assert_eq!(&again.open(&sealed, b"u").unwrap()[..], b"secret");
    assert!(!keys_dir.join(format!(".{KEY_FILE}.tmp")).exists());
    // A corrupt file is an error naming it, not a new key.
    fs::write(keys_dir.join(KEY_FILE), "garbage").unwrap();
    let e = DataKeys::load_or_create(&keys_dir).unwrap_err().to_string();
    assert!(
        e.contains("not base64") && e.contains("data-key.secret"),
        "{e}"
    );
}
