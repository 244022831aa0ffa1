//! RFC 7662 introspection and RFC 7009 revocation, in the user partition.

use std::sync::Arc;

use crate::command::{Introspection, Outcome, Reply};
use crate::core::Core;
use crate::error::AuthError;
use crate::tokens::VerifiedAccess;
use crate::tokens::refresh::ParsedRefresh;
use portcullis_storage::SessionRecord;

/// An access token is active while it verifies and its session is live.
pub(crate) async fn introspect_access(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::account_limit(
        &core,
        "introspection",
        access.user_id,
        core.cfg.introspection_rate_limit,
    )
    .await?;
    match super::authorize(&core, &access).await {
        Ok(()) => Ok(Outcome::Introspection(active_access(&access))),
        Err(AuthError::Unauthenticated(_)) => Ok(Outcome::Introspection(Introspection::Inactive)),
        Err(e) => Err(e),
    }
}

pub(crate) fn active_access(access: &VerifiedAccess) -> Introspection {
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

/// The session whose current refresh token `token` is, if any: one hash
/// and one comparison, however many rotations behind the token is (so an
/// old token costs no walk along its chain).
async fn current_session(
    core: &Core,
    token: &ParsedRefresh,
) -> Result<Option<SessionRecord>, AuthError> {
    let now = core.now_ms();
    let session = core
        .token_op(
            "get_session",
            core.tokens
                .get_session(token.user_id, token.session_id, now),
        )
        .await
        .map_err(|e| AuthError::from_store("get_session", e))?;
    let current = session.filter(|s| {
        s.generation == token.generation
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &token.hash()[..],
                &s.refresh_hash[..],
            ))
    });
    // Charged to the account only for its own, current token: a made-up
    // token naming someone's user id spends only its sender's per-address
    // budget, never the owner's.
    if current.is_some() {
        super::account_limit(
            core,
            "introspection",
            token.user_id,
            core.cfg.introspection_rate_limit,
        )
        .await?;
    }
    Ok(current)
}

/// A refresh token is active while it is its live session's current token.
pub(crate) async fn introspect_refresh(core: Arc<Core>, token: ParsedRefresh) -> Reply {
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
    Ok(Outcome::Introspection(answer))
}

/// Revoking an access token ends its session.
pub(crate) async fn revoke_access(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::account_limit(
        &core,
        "introspection",
        access.user_id,
        core.cfg.introspection_rate_limit,
    )
    .await?;
    super::end_session(&core, access.user_id, access.session_id, "revoke").await?;
    Ok(Outcome::Done)
}

/// Revoking a session's current refresh token ends the session; any other
/// token is ignored (RFC 7009 answers 200 either way).
pub(crate) async fn revoke_refresh(core: Arc<Core>, token: ParsedRefresh) -> Reply {
    if let Some(s) = current_session(&core, &token).await? {
        super::end_session(&core, s.user_id, s.id, "revoke").await?;
    }
    Ok(Outcome::Done)
}
