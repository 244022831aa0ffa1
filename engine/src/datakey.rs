//! The data key: AES-256-GCM for secrets Portcullis must read back and so
//! cannot hash (TOTP secrets), sealed before they reach a store.
//!
//! A sealed value is `0x01 | key id (4) | nonce (12) | ciphertext | tag (16)`.
//! The key id is the first 4 bytes of SHA-256 of the key, so a value sealed
//! under a retired key is recognised and opened with it, and a value sealed
//! under an unknown key fails with a clear error instead of a tag mismatch.
//! The associated data binds a value to its owner (the user id): a sealed
//! secret copied onto another user does not open.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const KEY_LEN: usize = 32;
const ID_LEN: usize = 4;
const TAG_LEN: usize = 16;
/// Name of the generated key file in the embedded store's `keys/` directory
/// (not `*.key`: those are signing keys).
pub const KEY_FILE: &str = "data-key.secret";

/// Why a data key could not be loaded or a value not opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataKeyError {
    /// The configured value is not base64 of 32 bytes.
    #[error("PORTCULLIS_DATA_KEY: {0}")]
    BadKey(String),
    /// No key is configured and none may be generated (a shared user store:
    /// every pod must use the same key).
    #[error(
        "PORTCULLIS_DATA_KEY is required with a shared user store: every pod must seal with \
         the same key (32 random bytes, base64: `openssl rand -base64 32`)"
    )]
    Missing,
    /// The key file could not be read or written.
    #[error("data key file {path}: {reason}")]
    File { path: String, reason: String },
    /// A sealed value names a key this process does not have.
    #[error("a stored secret is sealed with data key {0}, which is not configured")]
    UnknownKey(String),
    /// A sealed value is malformed or was tampered with (or belongs to another owner).
    #[error("a stored secret does not open with its data key (corrupt or moved)")]
    Corrupt,
}

struct Key {
    id: [u8; ID_LEN],
    key: LessSafeKey,
    /// Derives other keys from this one (HMAC-SHA256 keyed with it).
    kdf: ring::hmac::Key,
}

/// The keys that open sealed values; the first one also seals.
pub struct DataKeys {
    keys: Vec<Key>,
    rng: SystemRandom,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key ids only: never the keys.
        let ids: Vec<String> = self.keys.iter().map(|k| hex(&k.id)).collect();
        f.debug_struct("DataKeys").field("ids", &ids).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_from(raw: &[u8]) -> Result<Key, DataKeyError> {
    if raw.len() != KEY_LEN {
        return Err(DataKeyError::BadKey(format!(
            "a key must be {KEY_LEN} bytes, this one is {}",
            raw.len()
        )));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, raw);
    let mut id = [0u8; ID_LEN];
    id.copy_from_slice(&digest.as_ref()[..ID_LEN]);
    let unbound = UnboundKey::new(&AES_256_GCM, raw)
        .map_err(|_| DataKeyError::BadKey("AES-256-GCM refused the key".into()))?;
    Ok(Key {
        id,
        key: LessSafeKey::new(unbound),
        kdf: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, raw),
    })
}

fn decode(text: &str) -> Result<Zeroizing<Vec<u8>>, DataKeyError> {
    let text = text.trim();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
        .map(Zeroizing::new)
        .map_err(|_| DataKeyError::BadKey("not base64".into()))
}

impl DataKeys {
    /// Keys from configuration: comma-separated base64 keys, the first seals
    /// and all open (rotation: put the new key first, keep the old ones
    /// until every stored secret has been re-sealed).
    pub fn from_config(value: &str) -> Result<DataKeys, DataKeyError> {
        let mut keys = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            keys.push(key_from(&decode(part)?)?);
        }
        if keys.is_empty() {
            return Err(DataKeyError::BadKey("no key given".into()));
        }
        Ok(DataKeys {
            keys,
            rng: SystemRandom::new(),
        })
    }

    /// The key in `dir/data-key.secret`, generated there (0600, in a 0700
    /// directory) the first time: for the embedded default, so the flows
    /// work out of the box. A lost file makes every sealed secret unreadable:
    /// back it up with the rest of the data directory.
    pub fn load_or_create(dir: &Path) -> Result<DataKeys, DataKeyError> {
        let path = dir.join(KEY_FILE);
        let file_err = |reason: String| DataKeyError::File {
            path: path.display().to_string(),
            reason,
        };
        portcullis_storage::private_fs::ensure_dir(dir).map_err(|e| file_err(e.to_string()))?;
        match fs::read_to_string(&path) {
            Ok(text) => {
                return DataKeys::from_config(&text).map_err(|e| file_err(e.to_string()));
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(file_err(e.to_string()));
            }
            Err(_) => {}
        }
        let mut raw = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(raw.as_mut())
            .map_err(|_| file_err("the system random generator failed".into()))?;
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(raw.as_ref()));
        // Written to a temporary name, fsynced, then renamed: a crash leaves
        // no half-written key. create_new: two processes racing, one wins.
        let tmp = dir.join(format!(".{KEY_FILE}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| file_err(e.to_string()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| file_err(e.to_string()))?;
        fs::hard_link(&tmp, &path)
            .or_else(|e| {
                // Another process created it first: use theirs.
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| file_err(e.to_string()))?;
        let _ = fs::remove_file(&tmp);
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        DataKeys::from_config(&fs::read_to_string(&path).map_err(|e| file_err(e.to_string()))?)
    }

    /// Seals `plain` for `owner` under the first key.
    pub fn seal(&self, plain: &[u8], owner: &[u8]) -> Result<Vec<u8>, DataKeyError> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| DataKeyError::Corrupt)?;
        let mut out = Vec::with_capacity(1 + ID_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        key.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner),
                &mut body,
            )
            .map_err(|_| DataKeyError::Corrupt)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value sealed for `owner` by [`DataKeys::seal`].
    pub fn open(&self, sealed: &[u8], owner: &[u8]) -> Result<Zeroizing<Vec<u8>>, DataKeyError> {
        let header = 1 + ID_LEN + NONCE_LEN;
        if sealed.len() < header + TAG_LEN || sealed[0] != VERSION {
            return Err(DataKeyError::Corrupt);
        }
        let id = &sealed[1..1 + ID_LEN];
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| DataKeyError::UnknownKey(hex(id)))?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + ID_LEN..header]);
        let mut body = Zeroizing::new(sealed[header..].to_vec());
        let plain_len = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(owner),
                &mut body,
            )
            .map_err(|_| DataKeyError::Corrupt)?
            .len();
        body.truncate(plain_len);
        Ok(body)
    }

    /// Whether `sealed` was sealed with a key other than the sealing one
    /// (so it should be re-sealed when next written).
    pub fn is_stale(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + ID_LEN) != Some(&self.keys[0].id[..])
    }

    /// `sealed` re-sealed under the sealing key, when it was sealed under
    /// another (`None`: already current).
    pub fn reseal(&self, sealed: &[u8], owner: &[u8]) -> Result<Option<Vec<u8>>, DataKeyError> {
        if !self.is_stale(sealed) {
            return Ok(None);
        }
        let plain = self.open(sealed, owner)?;
        self.seal(&plain, owner).map(Some)
    }

    /// A key for another purpose named by `label`, derived from each data
    /// key, the sealing key's first: secrets that must live apart from the
    /// stores (the data key is configuration, never stored with users or
    /// sessions) and rotate with the data key.
    pub fn derive(&self, label: &[u8]) -> Vec<Zeroizing<[u8; 32]>> {
        self.keys
            .iter()
            .map(|k| {
                let tag = ring::hmac::sign(&k.kdf, label);
                let mut out = Zeroizing::new([0u8; 32]);
                out.copy_from_slice(tag.as_ref());
                out
            })
            .collect()
    }

    /// How many keys are configured (1: nothing can be stale).
    pub fn count(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests;
