//! Opaque refresh tokens: `prt_<user id>.<session id>.<generation>.<secret>`,
//! ids and secret in base64url, the generation in decimal.
//!
//! The user and session ids travel in clear so a token routes to its shard
//! and its session without a lookup; only the SHA-256 of the 256-bit secret
//! is stored. A session's first secret is random (ring's `SystemRandom`);
//! each rotation derives the next one from the presented one with a keyed
//! PRF, `secret[g+1] = HMAC-SHA256(chain key, label ‖ sid ‖ g+1 ‖ secret[g])`.
//! Without the chain key (a server secret kept apart from the stored hashes)
//! the next secret cannot be guessed; with it, the server can walk forward
//! from any token of a session and so recognise *every* rotated-away token,
//! however many rotations ago, as a genuine ancestor of the current one.
//! That is reuse detection without keeping a history of hashes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_storage::{SessionId, TokenHash, UserId};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Prefix that marks Portcullis refresh tokens (helps secret scanners).
pub const PREFIX: &str = "prt_";
/// Longest well-formed token (a generation of 20 digits).
pub const MAX_TOKEN_LEN: usize = PREFIX.len() + 22 + 1 + 22 + 1 + 20 + 1 + 43;
/// Longest walk from a presented token to the current one: the bound on the
/// work one refresh request can cause, whoever crafts the token (this many
/// HMAC-SHA256, about 0.25 ms of CPU: `cargo bench --bench micro --
/// refresh`). About ten days of refreshes every 15 minutes; a genuine token
/// further behind is refused without revoking the session (its reuse is no
/// longer recognised).
pub const MAX_WALK: u64 = 1_024;
const LABEL: &[u8] = b"portcullis/refresh-chain/v1";

/// A refresh-token secret.
pub type Secret = Zeroizing<[u8; 32]>;

/// A parsed refresh token.
#[derive(Clone)]
pub struct ParsedRefresh {
    /// Owner.
    pub user_id: UserId,
    /// Session.
    pub session_id: SessionId,
    /// How many rotations of the session came before this token.
    pub generation: u64,
    /// The secret (needed to derive its successors).
    pub secret: Secret,
}

impl std::fmt::Debug for ParsedRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedRefresh")
            .field("user_id", &self.user_id)
            .field("session_id", &self.session_id)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl ParsedRefresh {
    /// SHA-256 of the secret, as stored.
    pub fn hash(&self) -> TokenHash {
        hash_secret(&self.secret)
    }
}

/// The keyed chain of a session's refresh secrets.
pub struct Chain {
    key: hmac::Key,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Chain(<secret>)")
    }
}

/// How a presented token relates to a session's current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lineage {
    /// It is the current token.
    Current,
    /// It is a genuine earlier token, `rotations` rotations back.
    Ancestor {
        /// How many rotations ago it was replaced (1: the direct predecessor).
        rotations: u64,
    },
    /// Not a token of this session.
    Unknown,
}

impl Chain {
    /// A chain keyed by the server's chain secret.
    pub fn new(key: &[u8; 32]) -> Chain {
        Chain {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The secret of generation `generation + 1` following `secret`.
    pub fn next(&self, session: SessionId, generation: u64, secret: &[u8; 32]) -> Secret {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(LABEL);
        ctx.update(&session.0);
        ctx.update(&(generation + 1).to_be_bytes());
        ctx.update(secret);
        let tag = ctx.sign();
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Where `token` stands relative to the session's current token
    /// (`current_hash` at `current_generation`).
    pub fn lineage(
        &self,
        token: &ParsedRefresh,
        current_hash: &TokenHash,
        current_generation: u64,
    ) -> Lineage {
        if token.generation > current_generation {
            return Lineage::Unknown;
        }
        let rotations = current_generation - token.generation;
        if rotations > MAX_WALK {
            return Lineage::Unknown;
        }
        let mut secret = token.secret.clone();
        for g in token.generation..current_generation {
            secret = self.next(token.session_id, g, &secret);
        }
        if bool::from(hash_secret(&secret).ct_eq(current_hash)) {
            if rotations == 0 {
                Lineage::Current
            } else {
                Lineage::Ancestor { rotations }
            }
        } else {
            Lineage::Unknown
        }
    }
}

/// A fresh random secret for a new session's first token.
pub fn first_secret(rng: &SystemRandom) -> Result<Secret, ring::error::Unspecified> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill(secret.as_mut())?;
    Ok(secret)
}

/// The token text for a session's secret at `generation`.
pub fn encode(
    user_id: UserId,
    session_id: SessionId,
    generation: u64,
    secret: &[u8; 32],
) -> Zeroizing<String> {
    let mut token = Zeroizing::new(String::with_capacity(MAX_TOKEN_LEN));
    token.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(user_id.0, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(session_id.0, &mut token);
    token.push('.');
    token.push_str(itoa::Buffer::new().format(generation));
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(secret, &mut token);
    token
}

/// SHA-256 of a secret.
pub fn hash_secret(secret: &[u8; 32]) -> TokenHash {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Parses a presented token; `None` when it is not one of ours.
pub fn parse(token: &str) -> Option<ParsedRefresh> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(PREFIX)?;
    let mut parts = rest.split('.');
    let user_id = UserId::from_b64(parts.next()?)?;
    let session_id = SessionId::from_b64(parts.next()?)?;
    let generation = parts.next()?;
    // Canonical decimal only: no sign, no leading zeros (one text per token).
    if generation.is_empty()
        || !generation.bytes().all(|b| b.is_ascii_digit())
        || (generation.len() > 1 && generation.starts_with('0'))
    {
        return None;
    }
    let generation: u64 = generation.parse().ok()?;
    let raw = parts.next()?;
    if raw.len() != 43 || parts.next().is_some() {
        return None;
    }
    let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(raw).ok()?);
    let mut secret = Zeroizing::new([0u8; 32]);
    if decoded.len() != 32 {
        return None;
    }
    secret.copy_from_slice(&decoded);
    Some(ParsedRefresh {
        user_id,
        session_id,
        generation,
        secret,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Chain, ParsedRefresh) {
        let chain = Chain::new(&[7; 32]);
        let secret = first_secret(&SystemRandom::new()).unwrap();
        let token = encode(UserId([1; 16]), SessionId([2; 16]), 0, &secret);
        (chain, parse(&token).unwrap())
    }

    #[test]
    fn encode_then_parse() {
        let (_, t) = sample();
        assert_eq!(t.user_id, UserId([1; 16]));
        assert_eq!(t.session_id, SessionId([2; 16]));
        assert_eq!(t.generation, 0);
        let text = encode(t.user_id, t.session_id, 12_345, &t.secret);
        let back = parse(&text).unwrap();
        assert_eq!(back.generation, 12_345);
        assert_eq!(*back.secret, *t.secret);
        assert!(text.len() <= MAX_TOKEN_LEN);
    }

    #[test]
    fn every_ancestor_is_recognised_and_strangers_are_not() {
        let (chain, t0) = sample();
        let mut secret = t0.secret.clone();
        let mut tokens = vec![t0.clone()];
        for g in 0..20 {
            secret = chain.next(t0.session_id, g, &secret);
            let text = encode(t0.user_id, t0.session_id, g + 1, &secret);
            tokens.push(parse(&text).unwrap());
        }
        let current = tokens.last().unwrap();
        let (hash, generation) = (current.hash(), current.generation);
        assert_eq!(chain.lineage(current, &hash, generation), Lineage::Current);
        for t in &tokens[..20] {
            assert_eq!(
                chain.lineage(t, &hash, generation),
                Lineage::Ancestor {
                    rotations: generation - t.generation
                }
            );
        }
        // Forged: right ids and generation, wrong secret.
        let forged = parse(&encode(t0.user_id, t0.session_id, 5, &[9; 32])).unwrap();
        assert_eq!(chain.lineage(&forged, &hash, generation), Lineage::Unknown);
        // A future generation, or a different chain key.
        let future = parse(&encode(t0.user_id, t0.session_id, 21, &current.secret)).unwrap();
        assert_eq!(chain.lineage(&future, &hash, generation), Lineage::Unknown);
        let other = Chain::new(&[8; 32]);
        assert_eq!(
            other.lineage(&tokens[3], &hash, generation),
            Lineage::Unknown
        );
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let (_, t) = sample();
        let good = encode(t.user_id, t.session_id, 3, &t.secret).to_string();
        assert!(parse(&good).is_some());
        for bad in [
            String::new(),
            good[1..].to_string(),
            good.replacen("prt_", "xrt_", 1),
            good.replacen(".3.", ".03.", 1),
            good.replacen(".3.", ".-3.", 1),
            good.replacen(".3.", "..", 1),
            good.replacen(".3.", ".3x.", 1),
            format!("{good}.extra"),
            format!("{}!", &good[..good.len() - 1]),
            "x".repeat(10_000),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }
}
