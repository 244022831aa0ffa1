//! [`Introspect`]: RFC 7662. An access token is active while it verifies
//! and its session is live; a refresh token while it is its live session's
//! current token. Runs in the token's user's partition (an access token the
//! read model knows is answered on the calling thread).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::current_session;
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::{Introspection, TokenHint};
use crate::ops::Operation;
use crate::readmodel::Known;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::access::unverified;
use crate::steps::limits::account_limit;
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;
use crate::tokens::refresh::{self as refresh_token, ParsedRefresh};

/// RFC 7662 introspection.
pub struct Introspect {
    /// The token to inspect.
    pub token: Zeroizing<String>,
    /// The caller's guess of its kind (RFC 7662 lets the server ignore it).
    pub hint: Option<TokenHint>,
}

impl Operation for Introspect {
    type Reply = Introspection;

    fn submit(self, engine: &Engine, reply: Responder<Introspection>) {
        let core = &engine.core;
        if let Some(t) = refresh_token::parse(&self.token) {
            core.dispatch(PartitionKey::User(t.user_id), reply, move |c| refresh(c, t));
            return;
        }
        match core.token_svc.verify_access(&self.token, core.now_ms()) {
            Err(p) => reply.send(match unverified(core, p) {
                e @ AuthError::Unavailable { .. } => Err(e),
                _ => Ok(Introspection::Inactive),
            }),
            Ok(a) => match core.read.session(a.user_id, a.session_id, core.now_ms()) {
                Known::Live => reply.send(Ok(active_access(&a))),
                Known::Revoked => reply.send(Ok(Introspection::Inactive)),
                Known::Unknown => {
                    core.dispatch(PartitionKey::User(a.user_id), reply, move |c| access(c, a))
                }
            },
        }
    }
}

/// An access token is active while it verifies and its session is live.
async fn access(core: Arc<Core>, access: VerifiedAccess) -> Reply<Introspection> {
    account_limit(
        &core,
        "introspection",
        access.user_id,
        core.cfg.introspection_rate_limit,
    )
    .await?;
    match authorize(&core, &access).await {
        Ok(()) => Ok(active_access(&access)),
        Err(AuthError::Unauthenticated(_)) => Ok(Introspection::Inactive),
        Err(e) => Err(e),
    }
}

fn active_access(access: &VerifiedAccess) -> Introspection {
    let c = &access.claims;
    Introspection::Active {
        token_type: "access_token",
        sub: c.sub.clone(),
        sid: c.sid.clone(),
        exp: c.exp,
        iat: c.iat,
        iss: c.iss.clone(),
        aud: Some(c.aud.clone()),
        jti: Some(c.jti.clone()),
    }
}

/// A refresh token is active while it is its live session's current token.
async fn refresh(core: Arc<Core>, token: ParsedRefresh) -> Reply<Introspection> {
    let answer = match current_session(&core, &token).await? {
        Some(s) => Introspection::Active {
            token_type: "refresh_token",
            sub: s.user_id.to_uuid_string(),
            sid: s.id.to_b64(),
            exp: s.expires_at_ms.min(s.max_expires_at_ms) / 1000,
            iat: s.last_used_at_ms / 1000,
            iss: core.cfg.issuer.clone(),
            aud: None,
            jti: None,
        },
        None => Introspection::Inactive,
    };
    Ok(answer)
}
