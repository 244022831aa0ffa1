//! Single-use tokens mailed to users (email verification, password reset,
//! email change): `<prefix><user id>.<256-bit secret>`, both base64url.
//!
//! The user id travels in clear so the token routes to its user's partition
//! without a lookup; the record keeps only `SHA-256(label ‖ secret)` and an
//! expiry ([`PendingToken`]). The label and the prefix differ per purpose, so
//! a token of one flow is refused by every other. A token is used up by the
//! write that clears its pending entry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_storage::{PendingToken, UserId};
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    PasswordReset,
    EmailChange,
    /// The `mfa_token` between a login's password and its second factor.
    MfaLogin,
    /// The `mfa_token` between a social sign-in and its second factor (the
    /// same prefix: clients see one kind; the hash tells the first factor).
    MfaLoginFederated,
}

impl Purpose {
    /// The token's prefix (also helps secret scanners).
    pub fn prefix(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "pcv_",
            Purpose::PasswordReset => "pcr_",
            Purpose::EmailChange => "pce_",
            Purpose::MfaLogin | Purpose::MfaLoginFederated => "pcm_",
        }
    }

    fn label(self) -> &'static [u8] {
        match self {
            Purpose::VerifyEmail => b"portcullis/one-time/verify-email/v1",
            Purpose::PasswordReset => b"portcullis/one-time/password-reset/v1",
            Purpose::EmailChange => b"portcullis/one-time/email-change/v1",
            Purpose::MfaLogin => b"portcullis/one-time/mfa-login/v1",
            Purpose::MfaLoginFederated => b"portcullis/one-time/mfa-login-federated/v1",
        }
    }
}

/// Longest well-formed token.
pub const MAX_TOKEN_LEN: usize = 4 + 22 + 1 + 43;

/// A newly issued token: the text to mail and what the record keeps.
pub struct Issued {
    pub token: Zeroizing<String>,
    pub pending: PendingToken,
}

fn hash(purpose: Purpose, secret: &[u8; 32]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(purpose.label());
    ctx.update(secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Issues a token for `user`, valid until `now_ms + ttl_ms`.
pub fn issue(
    purpose: Purpose,
    user: UserId,
    now_ms: u64,
    ttl_ms: u64,
    rng: &SystemRandom,
) -> Result<Issued, ring::error::Unspecified> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rng.fill(secret.as_mut())?;
    let token = Zeroizing::new(format!(
        "{}{}.{}",
        purpose.prefix(),
        user.to_b64(),
        URL_SAFE_NO_PAD.encode(secret.as_ref())
    ));
    Ok(Issued {
        token,
        pending: PendingToken {
            hash: hash(purpose, &secret),
            expires_at_ms: now_ms.saturating_add(ttl_ms),
        },
    })
}

/// A presented token of `purpose`, parsed: its user and secret. `None` when
/// it is malformed or of another purpose.
pub struct Presented {
    pub user_id: UserId,
    secret: Zeroizing<[u8; 32]>,
    purpose: Purpose,
}

/// Parses `token` as a token of `purpose`.
pub fn parse(purpose: Purpose, token: &str) -> Option<Presented> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let rest = token.strip_prefix(purpose.prefix())?;
    let (user, secret) = rest.split_once('.')?;
    let user_id = UserId::from_b64(user)?;
    if secret.len() != 43 {
        return None;
    }
    let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(secret).ok()?);
    let mut out = Zeroizing::new([0u8; 32]);
    if decoded.len() != 32 {
        return None;
    }
    out.copy_from_slice(&decoded);
    Some(Presented {
        user_id,
        secret: out,
        purpose,
    })
}

impl Presented {
    /// The same token read as one of `purpose` (purposes sharing a prefix).
    pub fn as_purpose(&self, purpose: Purpose) -> Presented {
        Presented {
            user_id: self.user_id,
            secret: self.secret.clone(),
            purpose,
        }
    }

    /// Whether this token is the one `pending` keeps, and not expired at
    /// `now_ms` (the hash compared in constant time).
    pub fn matches(&self, pending: Option<&PendingToken>, now_ms: u64) -> bool {
        let Some(p) = pending else {
            return false;
        };
        let same: bool = hash(self.purpose, &self.secret).ct_eq(&p.hash).into();
        same && now_ms < p.expires_at_ms
    }
}

#[cfg(test)]
mod tests;
