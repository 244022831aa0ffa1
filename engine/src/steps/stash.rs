//! Flow state kept between two requests (a social sign-in's round trip, a
//! passkey ceremony): sealed with the data key, stashed in the token store
//! under a digest of a secret only the client holds, and taken (removed)
//! by the request that uses it, so any pod finishes what another started
//! and a replay finds nothing. Each entry carries its deadline by the
//! engine's clock as well as the store's expiry.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::core::Core;
use crate::error::AuthError;

/// 32 random bytes, base64url.
pub(crate) fn random_secret(core: &Core) -> Result<String, AuthError> {
    let mut b = [0u8; 32];
    core.token_svc
        .rng()
        .fill(&mut b)
        .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(b))
}

/// The token-store key of a flow secret: a digest, so a leaked store holds
/// nothing a client could present.
fn stash_key(purpose: &str, secret: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"portcullis-stash:");
    ctx.update(purpose.as_bytes());
    ctx.update(b":");
    ctx.update(secret.as_bytes());
    let mut k = [0u8; 32];
    k.copy_from_slice(ctx.finish().as_ref());
    k
}

/// What is sealed: the value and when it stops counting by the engine's
/// clock (the store forgets it by its own clock too; a shared store's
/// clock is not the engine's).
#[derive(Serialize)]
struct Sealing<'a, T> {
    expires_at_ms: u64,
    value: &'a T,
}

#[derive(Deserialize)]
struct Opened<T> {
    expires_at_ms: u64,
    value: T,
}

/// Seals `value` and stashes it under `secret` for `ttl`.
pub(crate) async fn stash<T: Serialize>(
    core: &Core,
    purpose: &'static str,
    secret: &str,
    value: &T,
    ttl: Duration,
) -> Result<(), AuthError> {
    let now = core.now_ms();
    let expires_at_ms = now.saturating_add(crate::clock::ms(ttl));
    let plain = serde_json::to_vec(&Sealing {
        expires_at_ms,
        value,
    })
    .map_err(|e| AuthError::Internal(format!("encoding {purpose} state: {e}")))?;
    let sealed = core
        .mailer
        .keys
        .seal(&plain, purpose.as_bytes())
        .map_err(|e| AuthError::Internal(format!("sealing {purpose} state: {e}")))?;
    let stored = core
        .token_op(
            "stash",
            core.tokens
                .stash(&stash_key(purpose, secret), &sealed, now, expires_at_ms),
        )
        .await
        .map_err(|e| AuthError::from_store("stash", e))?;
    if stored {
        Ok(())
    } else {
        // 256 random bits collided: only a broken generator does that.
        Err(AuthError::Internal(format!(
            "{purpose} secret already in use"
        )))
    }
}

/// Takes (once) what [`stash`] kept under `secret`, if it is still within
/// its lifetime by the engine's clock.
pub(crate) async fn take<T: DeserializeOwned>(
    core: &Core,
    purpose: &'static str,
    secret: &str,
) -> Result<Option<T>, AuthError> {
    if secret.is_empty() || secret.len() > 256 {
        return Ok(None);
    }
    let sealed = core
        .token_op(
            "take_stashed",
            core.tokens
                .take_stashed(&stash_key(purpose, secret), core.now_ms()),
        )
        .await
        .map_err(|e| AuthError::from_store("take_stashed", e))?;
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = core
        .mailer
        .keys
        .open(&sealed, purpose.as_bytes())
        .map_err(|e| AuthError::Internal(format!("opening {purpose} state: {e}")))?;
    let opened: Opened<T> = serde_json::from_slice(&plain)
        .map_err(|e| AuthError::Internal(format!("decoding {purpose} state: {e}")))?;
    Ok((core.now_ms() < opened.expires_at_ms).then_some(opened.value))
}

/// Marks `secret` used until `until_ms`; `false` when it was used already
/// (an ID token presented twice).
pub(crate) async fn use_once(
    core: &Core,
    purpose: &'static str,
    secret: &str,
    until_ms: u64,
) -> Result<bool, AuthError> {
    let now = core.now_ms();
    core.token_op(
        "stash",
        core.tokens
            .stash(&stash_key(purpose, secret), &[], now, until_ms.max(now + 1)),
    )
    .await
    .map_err(|e| AuthError::from_store("stash", e))
}
