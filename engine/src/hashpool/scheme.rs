//! Password hash schemes and their PHC / MCF string forms.
//!
//! - `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`: the default (OWASP).
//! - `$pbkdf2-sha256$i=600000,l=32$<salt>$<hash>`: for FIPS shops, via `ring`.
//! - `$2a$` / `$2b$` / `$2y$` bcrypt: verify only, for imported users; they are
//!   rehashed with the configured scheme at their next successful login.
//!
//! Salts and hashes use the PHC "B64" alphabet (standard base64 without padding).

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// Length of generated salts.
const SALT_LEN: usize = 16;
/// Length of derived hashes.
const HASH_LEN: usize = 32;

/// The configured scheme for new hashes (`PORTCULLIS_PASSWORD_HASH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashScheme {
    /// Argon2id with memory (KiB), iterations and lanes.
    Argon2id {
        /// Memory cost in KiB.
        m: u32,
        /// Iterations.
        t: u32,
        /// Lanes.
        p: u32,
    },
    /// PBKDF2-HMAC-SHA256 with an iteration count.
    Pbkdf2Sha256 {
        /// Iterations.
        i: u32,
    },
}

impl Default for HashScheme {
    /// OWASP's recommended Argon2id setting.
    fn default() -> Self {
        HashScheme::Argon2id {
            m: 19_456,
            t: 2,
            p: 1,
        }
    }
}

impl HashScheme {
    /// Whether the setting is at least OWASP's recommendation for its algorithm.
    pub fn meets_owasp_minimum(&self) -> bool {
        match *self {
            HashScheme::Argon2id { m, t, .. } => {
                // OWASP lists equivalent trade-offs: m=19456/t=2 ... m=7168/t=5.
                u64::from(m) * u64::from(t) >= 19_456 * 2 && m >= 7_168
            }
            HashScheme::Pbkdf2Sha256 { i } => i >= 600_000,
        }
    }
}

impl fmt::Display for HashScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashScheme::Argon2id { m, t, p } => write!(f, "argon2id:m={m},t={t},p={p}"),
            HashScheme::Pbkdf2Sha256 { i } => write!(f, "pbkdf2-sha256:i={i}"),
        }
    }
}

/// Why a scheme setting was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid password hash setting '{input}': {reason} (expected e.g. argon2id:m=19456,t=2,p=1 or pbkdf2-sha256:i=600000)"
)]
pub struct SchemeParseError {
    input: String,
    reason: String,
}

impl FromStr for HashScheme {
    type Err = SchemeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| SchemeParseError {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (alg, params) = s.split_once(':').unwrap_or((s, ""));
        let mut kv = std::collections::BTreeMap::new();
        for part in params.split(',').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| err(&format!("'{part}' is not key=value")))?;
            let v: u32 = v
                .parse()
                .map_err(|_| err(&format!("'{v}' is not a positive integer")))?;
            if kv.insert(k.to_owned(), v).is_some() {
                return Err(err(&format!("'{k}' given twice")));
            }
        }
        let mut take = |k: &str, default: u32| kv.remove(k).unwrap_or(default);
        let scheme = match alg {
            "argon2id" => {
                let d = HashScheme::default();
                let HashScheme::Argon2id { m, t, p } = d else {
                    unreachable!("the default scheme is argon2id")
                };
                HashScheme::Argon2id {
                    m: take("m", m),
                    t: take("t", t),
                    p: take("p", p),
                }
            }
            "pbkdf2-sha256" => HashScheme::Pbkdf2Sha256 {
                i: take("i", 600_000),
            },
            other => return Err(err(&format!("unknown algorithm '{other}'"))),
        };
        if let Some(k) = kv.keys().next() {
            return Err(err(&format!("unknown parameter '{k}' for {alg}")));
        }
        match scheme {
            HashScheme::Argon2id { m, t, p } => {
                Params::new(m, t, p, Some(HASH_LEN)).map_err(|e| err(&e.to_string()))?;
            }
            HashScheme::Pbkdf2Sha256 { i } => {
                if i == 0 {
                    return Err(err("iterations must be at least 1"));
                }
            }
        }
        Ok(scheme)
    }
}

/// A stored hash, parsed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum StoredHash {
    Argon2id {
        m: u32,
        t: u32,
        p: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Pbkdf2Sha256 {
        i: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Bcrypt(String),
}

impl fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredHash::Argon2id { m, t, p, .. } => write!(f, "argon2id(m={m},t={t},p={p})"),
            StoredHash::Pbkdf2Sha256 { i, .. } => write!(f, "pbkdf2-sha256(i={i})"),
            StoredHash::Bcrypt(_) => f.write_str("bcrypt"),
        }
    }
}

/// Why a stored hash could not be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoredHashError {
    /// The string is not a hash format Portcullis knows.
    #[error("unsupported password hash format")]
    Unsupported,
    /// The string has a known prefix but is damaged.
    #[error("malformed password hash: {0}")]
    Malformed(&'static str),
}

impl StoredHash {
    pub(crate) fn parse(s: &str) -> Result<StoredHash, StoredHashError> {
        if s.starts_with("$2a$")
            || s.starts_with("$2b$")
            || s.starts_with("$2y$")
            || s.starts_with("$2x$")
        {
            if s.len() != 60 {
                return Err(StoredHashError::Malformed(
                    "bcrypt hash must be 60 characters",
                ));
            }
            return Ok(StoredHash::Bcrypt(s.to_owned()));
        }
        let mut parts = s.split('$');
        if parts.next() != Some("") {
            return Err(StoredHashError::Unsupported);
        }
        let alg = parts.next().ok_or(StoredHashError::Unsupported)?;
        match alg {
            "argon2id" => {
                if parts.next() != Some("v=19") {
                    return Err(StoredHashError::Malformed("argon2id version must be v=19"));
                }
                let params = parse_params(parts.next())?;
                let (salt, hash) = salt_and_hash(&mut parts)?;
                let get = |k| {
                    params
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| *v)
                        .ok_or(StoredHashError::Malformed("missing argon2 parameter"))
                };
                let (m, t, p) = (get("m")?, get("t")?, get("p")?);
                Params::new(m, t, p, Some(hash.len()))
                    .map_err(|_| StoredHashError::Malformed("argon2 parameters out of range"))?;
                Ok(StoredHash::Argon2id {
                    m,
                    t,
                    p,
                    salt,
                    hash,
                })
            }
            "pbkdf2-sha256" => {
                let params = parse_params(parts.next())?;
                let (salt, hash) = salt_and_hash(&mut parts)?;
                let i = params
                    .iter()
                    .find(|(n, _)| *n == "i")
                    .map(|(_, v)| *v)
                    .ok_or(StoredHashError::Malformed("missing pbkdf2 iterations"))?;
                if i == 0 {
                    return Err(StoredHashError::Malformed("pbkdf2 iterations must be >= 1"));
                }
                Ok(StoredHash::Pbkdf2Sha256 { i, salt, hash })
            }
            _ => Err(StoredHashError::Unsupported),
        }
    }

    /// Whether a successful login should replace this hash with one made by `scheme`.
    pub(crate) fn needs_rehash(&self, scheme: &HashScheme) -> bool {
        match (self, scheme) {
            (
                StoredHash::Argon2id { m, t, p, hash, .. },
                HashScheme::Argon2id {
                    m: m2,
                    t: t2,
                    p: p2,
                },
            ) => (m, t, p) != (m2, t2, p2) || hash.len() != HASH_LEN,
            (StoredHash::Pbkdf2Sha256 { i, hash, .. }, HashScheme::Pbkdf2Sha256 { i: i2 }) => {
                i != i2 || hash.len() != HASH_LEN
            }
            _ => true,
        }
    }

    /// Verifies `password` in constant time with respect to the stored hash.
    /// `memory` is a reusable Argon2 block buffer.
    pub(crate) fn verify(&self, password: &[u8], memory: &mut Vec<Block>) -> bool {
        match self {
            StoredHash::Argon2id {
                m,
                t,
                p,
                salt,
                hash,
            } => {
                let Ok(params) = Params::new(*m, *t, *p, Some(hash.len())) else {
                    return false;
                };
                let mut out = vec![0u8; hash.len()];
                if argon2_into(params, password, salt, &mut out, memory).is_err() {
                    return false;
                }
                out.ct_eq(hash).into()
            }
            StoredHash::Pbkdf2Sha256 { i, salt, hash } => {
                let Some(iters) = NonZeroU32::new(*i) else {
                    return false;
                };
                ring::pbkdf2::verify(
                    ring::pbkdf2::PBKDF2_HMAC_SHA256,
                    iters,
                    salt,
                    password,
                    hash,
                )
                .is_ok()
            }
            StoredHash::Bcrypt(s) => bcrypt::verify(password, s).unwrap_or(false),
        }
    }
}

fn parse_params(s: Option<&str>) -> Result<Vec<(&str, u32)>, StoredHashError> {
    let s = s.ok_or(StoredHashError::Malformed("missing parameters"))?;
    s.split(',')
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or(StoredHashError::Malformed("parameter is not key=value"))?;
            let v = v
                .parse()
                .map_err(|_| StoredHashError::Malformed("parameter is not a number"))?;
            Ok((k, v))
        })
        .collect()
}

fn salt_and_hash<'a>(
    parts: &mut impl Iterator<Item = &'a str>,
) -> Result<(Vec<u8>, Vec<u8>), StoredHashError> {
    let salt = parts
        .next()
        .and_then(|s| B64.decode(s).ok())
        .ok_or(StoredHashError::Malformed("bad salt"))?;
    let hash = parts
        .next()
        .and_then(|s| B64.decode(s).ok())
        .ok_or(StoredHashError::Malformed("bad hash"))?;
    if parts.next().is_some() {
        return Err(StoredHashError::Malformed("trailing fields"));
    }
    if salt.len() < 8 || hash.len() < 16 {
        return Err(StoredHashError::Malformed("salt or hash too short"));
    }
    Ok((salt, hash))
}

fn argon2_into(
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Vec<Block>,
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::new());
    }
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password_into_with_memory(
        password,
        salt,
        out,
        &mut memory[..blocks],
    )
}

/// Hashes `password` with `scheme` and a fresh random salt, returning the PHC string.
pub(crate) fn hash_password(
    scheme: &HashScheme,
    password: &[u8],
    rng: &SystemRandom,
    memory: &mut Vec<Block>,
) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_LEN];
    rng.fill(&mut salt).map_err(|_| HashError::Random)?;
    let mut out = [0u8; HASH_LEN];
    match *scheme {
        HashScheme::Argon2id { m, t, p } => {
            let params = Params::new(m, t, p, Some(HASH_LEN))
                .map_err(|e| HashError::Params(e.to_string()))?;
            argon2_into(params, password, &salt, &mut out, memory)
                .map_err(|e| HashError::Params(e.to_string()))?;
            Ok(format!(
                "$argon2id$v=19$m={m},t={t},p={p}${}${}",
                B64.encode(salt),
                B64.encode(out)
            ))
        }
        HashScheme::Pbkdf2Sha256 { i } => {
            let iters = NonZeroU32::new(i).ok_or(HashError::Params("i=0".into()))?;
            ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                iters,
                &salt,
                password,
                &mut out,
            );
            Ok(format!(
                "$pbkdf2-sha256$i={i},l={HASH_LEN}${}${}",
                B64.encode(salt),
                B64.encode(out)
            ))
        }
    }
}

/// Why hashing failed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
    /// The configured parameters were refused by the algorithm.
    #[error("hash parameters refused: {0}")]
    Params(String),
}

#[cfg(test)]
mod tests;
