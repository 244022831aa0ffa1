//! [`IdTokenSignIn`]: a native app that already holds a provider ID token
//! (Google or Apple sign-in SDKs) signs in with it. The token is checked as
//! at the callback, with its `aud` among the configured client ids, and
//! used once.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{SocialReply, sign_in};
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::ClientInfo;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::social::ProviderError;
use crate::steps::social::s256;
use crate::steps::stash::use_once;

/// Sign in with a provider's ID token.
pub struct IdTokenSignIn {
    /// The provider's name.
    pub provider: String,
    /// The ID token.
    pub id_token: Zeroizing<String>,
    /// The nonce the app put in its request to the provider.
    pub nonce: Zeroizing<String>,
    /// Caller.
    pub client: ClientInfo,
}

/// How long a used ID token without an expiry is remembered.
const USED_FOR_MS: u64 = 24 * 3600 * 1000;
/// Beyond its expiry (the verifier's clock may lag the provider's).
const EXP_SKEW_MS: u64 = 60_000;

impl Operation for IdTokenSignIn {
    type Reply = SocialReply;

    fn submit(self, engine: &Engine, reply: Responder<SocialReply>) {
        let key = PartitionKey::Email(format!("oauth-id-token:{}", s256(&self.id_token)));
        engine.core.dispatch(key, reply, move |c| run(c, self));
    }
}

async fn run(core: Arc<Core>, req: IdTokenSignIn) -> Reply<SocialReply> {
    let provider = core
        .social
        .get(&req.provider)
        .cloned()
        .ok_or(AuthError::UnknownProvider)?;
    crate::steps::limits::shared_rate_limit(&core, "social", &req.client).await?;
    if req.id_token.len() > 16 * 1024 || req.nonce.is_empty() {
        return Err(AuthError::InvalidIdToken);
    }
    let identity = match provider
        .check_id_token(&req.id_token, &req.nonce, core.now_ms())
        .await
    {
        Ok(i) => i,
        Err(ProviderError::Unavailable(why)) => {
            tracing::warn!(provider = %req.provider, why, "provider unavailable");
            return Err(AuthError::Unavailable {
                retry_after_secs: 5,
            });
        }
        Err(e) => {
            tracing::warn!(provider = %req.provider, error = %e, "ID token refused");
            super::count(&req.provider, &Err(AuthError::InvalidIdToken));
            return Err(AuthError::InvalidIdToken);
        }
    };
    // A token seen once is never accepted again (a leaked one replayed),
    // until it expires. Keyed on what was signed, not on the text: a
    // signature has other encodings (unused trailing bits, ECDSA's s and
    // n - s) that verify just the same.
    let signed = req
        .id_token
        .rsplit_once('.')
        .map_or("", |(signed, _)| signed);
    let now = core.now_ms();
    let until = identity
        .expires_at_ms
        .unwrap_or(now.saturating_add(USED_FOR_MS))
        .saturating_add(EXP_SKEW_MS);
    let fresh = use_once(&core, "social-id-token", signed, until).await?;
    if !fresh {
        tracing::warn!(provider = %req.provider, "ID token replayed");
        super::count(&req.provider, &Err(AuthError::InvalidIdToken));
        return Err(AuthError::InvalidIdToken);
    }
    sign_in(&core, req.provider, identity, None, req.client).await
}
