//! RFC 7662 introspection and RFC 7009 revocation, in the user partition.

use std::sync::Arc;

use crate::command::{Introspection, Outcome, Reply};
use crate::core::Core;
use crate::error::AuthError;
use crate::metrics as m;
use crate::tokens::VerifiedAccess;
use crate::tokens::refresh::{Lineage, ParsedRefresh};
use portcullis_storage::SessionRecord;

/// Whether `token` is its session's current refresh token.
fn is_current(core: &Core, token: &ParsedRefresh, s: &SessionRecord) -> bool {
    core.token_svc
        .chain()
        .is_ok_and(|c| c.lineage(token, &s.refresh_hash, s.generation) == Lineage::Current)
}

/// An access token is active while it verifies and its session is live.
pub(crate) async fn introspect_access(core: Arc<Core>, access: VerifiedAccess) -> Reply {
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

/// A refresh token is active while it is its live session's current token.
pub(crate) async fn introspect_refresh(core: Arc<Core>, token: ParsedRefresh) -> Reply {
    let now = core.now_ms();
    let session = core
        .token_op(
            "get_session",
            core.tokens
                .get_session(token.user_id, token.session_id, now),
        )
        .await
        .map_err(|e| AuthError::from_store("get_session", e))?;
    let answer = match session {
        Some(s) if is_current(&core, &token, &s) => Introspection::Active {
            token_type: "refresh_token",
            sub: s.user_id.to_uuid_string(),
            sid: s.id.to_b64(),
            exp: s.expires_at_ms.min(s.max_expires_at_ms) / 1000,
            iat: s.last_used_at_ms / 1000,
            iss: core.cfg.issuer.clone(),
            aud: None,
            jti: None,
        },
        _ => Introspection::Inactive,
    };
    Ok(Outcome::Introspection(answer))
}

/// Revoking an access token ends its session.
pub(crate) async fn revoke_access(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    core.read.revoke_session(access.user_id, access.session_id);
    let existed = core
        .token_op(
            "delete_session",
            core.tokens
                .delete_session(access.user_id, access.session_id),
        )
        .await
        .map_err(|e| AuthError::from_store("delete_session", e))?;
    if existed {
        metrics::counter!(m::SESSIONS_REVOKED_TOTAL, "reason" => "revoke").increment(1);
    }
    Ok(Outcome::Done)
}

/// Revoking a session's current refresh token ends the session; any other
/// token is ignored (RFC 7009 answers 200 either way).
pub(crate) async fn revoke_refresh(core: Arc<Core>, token: ParsedRefresh) -> Reply {
    let now = core.now_ms();
    let session = core
        .token_op(
            "get_session",
            core.tokens
                .get_session(token.user_id, token.session_id, now),
        )
        .await
        .map_err(|e| AuthError::from_store("get_session", e))?;
    if let Some(s) = session
        && is_current(&core, &token, &s)
    {
        core.read.revoke_session(s.user_id, s.id);
        core.token_op(
            "delete_session",
            core.tokens.delete_session(s.user_id, s.id),
        )
        .await
        .map_err(|e| AuthError::from_store("delete_session", e))?;
        metrics::counter!(m::SESSIONS_REVOKED_TOTAL, "reason" => "revoke").increment(1);
    }
    Ok(Outcome::Done)
}
