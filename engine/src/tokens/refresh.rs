//! Opaque refresh tokens: `prt_<user id>.<session id>.<secret>`, all base64url.
//!
//! The user and session ids travel in clear so a token routes to its shard
//! and its session without a lookup; the 256-bit secret is random (ring's
//! `SystemRandom`) and only its SHA-256 is stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_storage::{SessionId, TokenHash, UserId};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Prefix that marks Portcullis refresh tokens (helps secret scanners).
pub const PREFIX: &str = "prt_";
/// Length of a well-formed token.
pub const TOKEN_LEN: usize = PREFIX.len() + 22 + 1 + 22 + 1 + 43;

/// A parsed refresh token: where it routes and the hash to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedRefresh {
    /// Owner.
    pub user_id: UserId,
    /// Session.
    pub session_id: SessionId,
    /// SHA-256 of the secret.
    pub hash: TokenHash,
}

/// Makes a new token for a session; returns the token and the hash to store.
pub fn mint(
    rng: &SystemRandom,
    user_id: UserId,
    session_id: SessionId,
) -> Result<(Zeroizing<String>, TokenHash), ring::error::Unspecified> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill(secret.as_mut())?;
    let mut token = Zeroizing::new(String::with_capacity(TOKEN_LEN));
    token.push_str(PREFIX);
    URL_SAFE_NO_PAD.encode_string(user_id.0, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(session_id.0, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(secret.as_ref(), &mut token);
    Ok((token, hash_secret(secret.as_ref())))
}

fn hash_secret(secret: &[u8]) -> TokenHash {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Parses a presented token; `None` when it is not one of ours.
pub fn parse(token: &str) -> Option<ParsedRefresh> {
    if token.len() != TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(PREFIX)?;
    let mut parts = rest.split('.');
    let user_id = UserId::from_b64(parts.next()?)?;
    let session_id = SessionId::from_b64(parts.next()?)?;
    let secret = Zeroizing::new(URL_SAFE_NO_PAD.decode(parts.next()?).ok()?);
    if secret.len() != 32 || parts.next().is_some() {
        return None;
    }
    Some(ParsedRefresh {
        user_id,
        session_id,
        hash: hash_secret(&secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mint_then_parse() {
        let rng = SystemRandom::new();
        let (token, hash) = mint(&rng, UserId([1; 16]), SessionId([2; 16])).unwrap();
        assert_eq!(token.len(), TOKEN_LEN);
        let p = parse(&token).unwrap();
        assert_eq!(p.user_id, UserId([1; 16]));
        assert_eq!(p.session_id, SessionId([2; 16]));
        assert_eq!(p.hash, hash);
        let (other, other_hash) = mint(&rng, UserId([1; 16]), SessionId([2; 16])).unwrap();
        assert_ne!(*other, *token);
        assert_ne!(other_hash, hash);
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let rng = SystemRandom::new();
        let (token, _) = mint(&rng, UserId([1; 16]), SessionId([2; 16])).unwrap();
        assert!(parse("").is_none());
        assert!(parse(&token[1..]).is_none());
        assert!(parse(&token.replacen("prt_", "xrt_", 1)).is_none());
        assert!(parse(&token.replace('.', "!")).is_none());
        let mut bad = token.to_string();
        bad.replace_range(TOKEN_LEN - 1.., "!");
        assert!(parse(&bad).is_none());
        assert!(parse(&"x".repeat(10_000)).is_none());
    }
}
