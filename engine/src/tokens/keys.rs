//! The signing key ring and its rotation schedule.
//!
//! Every key is published in the JWKS from its creation, and starts signing
//! only at its `not_before`, at least `publish_lead` later, so verifiers that
//! cache the JWKS already know it when the first token signed by it arrives.
//! A key that a successor has replaced keeps being published until every token
//! it signed has expired (`retire_after`), then it is deleted.

use std::time::Duration;

use crate::clock::ms;

use portcullis_storage::SigningKeyRecord;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

use super::jwt::{SigningKey, thumbprint};

/// When keys are rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// How long a key signs before its successor takes over.
    pub interval: Duration,
    /// How long a new key is published before it signs.
    pub publish_lead: Duration,
    /// How long a replaced key stays published (longer than the access-token lifetime).
    pub retire_after: Duration,
}

/// A change to the stored keys decided by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyChange {
    /// Store this new or updated key.
    Save(SigningKeyRecord),
    /// Delete the key with this id.
    Delete(String),
}

/// Generates a fresh Ed25519 key that starts signing at `not_before_ms`.
pub fn generate(
    rng: &SystemRandom,
    now_ms: u64,
    not_before_ms: u64,
) -> Result<SigningKeyRecord, ring::error::Unspecified> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(rng)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| ring::error::Unspecified)?;
    let mut public = [0u8; 32];
    public.copy_from_slice(pair.public_key().as_ref());
    Ok(SigningKeyRecord {
        kid: thumbprint(&public),
        pkcs8: pkcs8.as_ref().to_vec(),
        public,
        created_at_ms: now_ms,
        not_before_ms,
        expires_at_ms: None,
    })
}

/// Decides what to change so that there is a current signer, a published
/// successor, and no expired key. Pure: the caller applies the changes.
pub fn plan(
    keys: &[SigningKeyRecord],
    now_ms: u64,
    policy: &RotationPolicy,
    rng: &SystemRandom,
) -> Result<Vec<KeyChange>, ring::error::Unspecified> {
    let mut changes = Vec::new();
    let mut live: Vec<SigningKeyRecord> = Vec::new();
    for k in keys {
        match k.expires_at_ms {
            Some(e) if e <= now_ms => changes.push(KeyChange::Delete(k.kid.clone())),
            _ => live.push(k.clone()),
        }
    }
    let current_nb = live
        .iter()
        .filter(|k| k.not_before_ms <= now_ms)
        .map(|k| k.not_before_ms)
        .max();
    let current_nb = match current_nb {
        Some(nb) => nb,
        None => {
            // Bootstrap (or every key expired): sign from now on.
            let k = generate(rng, now_ms, now_ms)?;
            changes.push(KeyChange::Save(k.clone()));
            live.push(k);
            now_ms
        }
    };
    // Keys replaced by the current one retire once their tokens have expired.
    for k in &live {
        if k.not_before_ms < current_nb && k.expires_at_ms.is_none() {
            let mut retired = k.clone();
            retired.expires_at_ms = Some(current_nb.saturating_add(ms(policy.retire_after)));
            changes.push(KeyChange::Save(retired));
        }
    }
    if !live.iter().any(|k| k.not_before_ms > now_ms) {
        let nb = current_nb
            .saturating_add(ms(policy.interval))
            .max(now_ms.saturating_add(ms(policy.publish_lead)));
        changes.push(KeyChange::Save(generate(rng, now_ms, nb)?));
    }
    Ok(changes)
}

/// In a signing-keys directory, the file whose key signs.
pub const SIGNING_FILE: &str = "signing.pem";

/// Reads an operator-managed key directory (a mounted Secret): every
/// `*.pem` file holds one Ed25519 private key as unencrypted PKCS#8 PEM
/// (`openssl genpkey -algorithm ed25519`). [`SIGNING_FILE`] signs from now
/// on; the others are published only. Names starting with `.` (the
/// kubelet's `..data` links) are ignored. Any unreadable or invalid key
/// file is an error naming it: a half-read key set is never installed.
pub fn load_dir(dir: &std::path::Path, now_ms: u64) -> Result<Vec<SigningKeyRecord>, String> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read signing keys directory {}: {e}", dir.display()))?;
    let mut records: Vec<SigningKeyRecord> = Vec::new();
    let mut has_signer = false;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".pem") {
            continue;
        }
        names.push(name);
    }
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read signing key {}: {e}", path.display()))?;
        let der = pem_pkcs8(&text).map_err(|e| format!("signing key {}: {e}", path.display()))?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map_err(|e| {
            format!(
                "signing key {} is not an Ed25519 PKCS#8 key: {e}",
                path.display()
            )
        })?;
        let mut public = [0u8; 32];
        public.copy_from_slice(pair.public_key().as_ref());
        let signs = name == SIGNING_FILE;
        has_signer |= signs;
        let record = SigningKeyRecord {
            kid: thumbprint(&public),
            pkcs8: der,
            public,
            created_at_ms: now_ms,
            // Published only: never the signer, whatever the time.
            not_before_ms: if signs { 0 } else { u64::MAX },
            expires_at_ms: None,
        };
        // The same key under two names: the signing entry wins.
        match records.iter_mut().find(|r| r.kid == record.kid) {
            Some(r) if signs => *r = record,
            Some(_) => {}
            None => records.push(record),
        }
    }
    if !has_signer {
        return Err(format!(
            "signing keys directory {} has no {SIGNING_FILE}",
            dir.display()
        ));
    }
    Ok(records)
}

/// The DER of the one `PRIVATE KEY` block of a PEM document.
fn pem_pkcs8(text: &str) -> Result<Vec<u8>, &'static str> {
    use base64::Engine as _;
    const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
    const END: &str = "-----END PRIVATE KEY-----";
    if text.contains("ENCRYPTED PRIVATE KEY") {
        return Err("is encrypted; give the key unencrypted (the Secret protects it)");
    }
    let start = text
        .find(BEGIN)
        .ok_or("has no -----BEGIN PRIVATE KEY----- block")?
        + BEGIN.len();
    let len = text[start..]
        .find(END)
        .ok_or("has no -----END PRIVATE KEY----- line")?;
    let body: String = text[start..start + len]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "has a PRIVATE KEY block that is not base64")
}

/// The loaded keys: who signs now, who verifies, and the JWKS document.
#[derive(Debug)]
pub struct KeyRing {
    keys: Vec<(SigningKeyRecord, SigningKey)>,
    jwks: std::sync::Arc<[u8]>,
}

impl KeyRing {
    /// Parses stored keys. Keys that fail to parse are skipped with an error log.
    pub fn load(records: Vec<SigningKeyRecord>, now_ms: u64) -> KeyRing {
        let mut keys = Vec::new();
        for r in records {
            if r.expires_at_ms.is_some_and(|e| e <= now_ms) {
                continue;
            }
            match SigningKey::from_pkcs8(&r.kid, &r.pkcs8) {
                Ok(k) if k.public_key() == r.public => keys.push((r, k)),
                Ok(_) => {
                    tracing::error!(kid = %r.kid, "stored signing key does not match its public key; skipped")
                }
                Err(e) => {
                    tracing::error!(kid = %r.kid, error = %e, "stored signing key is unusable; skipped")
                }
            }
        }
        keys.sort_by_key(|(r, _)| r.not_before_ms);
        let jwks = Self::render_jwks(&keys);
        KeyRing { keys, jwks }
    }

    fn render_jwks(keys: &[(SigningKeyRecord, SigningKey)]) -> std::sync::Arc<[u8]> {
        use base64::Engine as _;
        let list: Vec<_> = keys
            .iter()
            .map(|(r, _)| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r.public),
                    "kid": r.kid,
                    "use": "sig",
                    "alg": "EdDSA",
                })
            })
            .collect();
        serde_json::to_vec(&json!({ "keys": list }))
            .unwrap_or_default()
            .into()
    }

    /// The key that signs at `now_ms`: the latest whose `not_before` has come.
    pub fn signer(&self, now_ms: u64) -> Option<&SigningKey> {
        self.keys
            .iter()
            .rev()
            .find(|(r, _)| r.not_before_ms <= now_ms)
            .map(|(_, k)| k)
    }

    /// The published key with this id.
    pub fn verifier(&self, kid: &str) -> Option<&SigningKey> {
        self.keys.iter().find(|(r, _)| r.kid == kid).map(|(_, k)| k)
    }

    /// The ids of the published keys.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(r, _)| r.kid.as_str())
    }

    /// The JWKS document (`{"keys": [...]}`), rendered once per load.
    pub fn jwks(&self) -> std::sync::Arc<[u8]> {
        self.jwks.clone()
    }

    /// Number of published keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is loaded.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests;
