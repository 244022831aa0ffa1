//! Refresh-token rotation with reuse detection, in the user partition.

use std::sync::Arc;

use portcullis_storage::{RotateOutcome, RotateRequest};

use crate::command::{Outcome, Reply, TokenGrant};
use crate::core::Core;
use crate::error::AuthError;
use crate::metrics as m;
use crate::tokens::refresh::ParsedRefresh;

/// Runs in `User(token.user_id)`.
pub(crate) async fn run(core: Arc<Core>, token: ParsedRefresh) -> Reply {
    let (label, result) = match refresh(&core, &token).await {
        Ok(grant) => ("ok", Ok(Outcome::Granted(grant))),
        Err((label, e)) => (label, Err(e)),
    };
    metrics::counter!(m::REFRESHES_TOTAL, "result" => label).increment(1);
    result
}

async fn refresh(
    core: &Arc<Core>,
    token: &ParsedRefresh,
) -> Result<TokenGrant, (&'static str, AuthError)> {
    let now = core.now_ms();
    let (new_token, new_hash) = core
        .token_svc
        .mint_refresh(token.user_id, token.session_id)
        .map_err(|e| ("error", e))?;
    let request = RotateRequest {
        user_id: token.user_id,
        session_id: token.session_id,
        presented: token.hash,
        new_hash,
        now_ms: now,
        grace_ms: super::ms(core.cfg.refresh_reuse_grace),
        new_expires_at_ms: now.saturating_add(super::ms(core.cfg.refresh_ttl)),
        history_len: core.cfg.refresh_history,
    };
    let outcome = core
        .token_op("rotate_refresh", core.tokens.rotate_refresh(&request))
        .await
        .map_err(|e| ("error", AuthError::from_store("rotate_refresh", e)))?;
    match outcome {
        RotateOutcome::Rotated(session) => {
            core.read.put_session(&session);
            let access = core
                .token_svc
                .issue_access(token.user_id, token.session_id, now, &["pwd"])
                .map_err(|e| ("error", e))?;
            Ok(TokenGrant {
                access_token: access.token,
                expires_in: access.expires_in,
                refresh_token: new_token,
                refresh_expires_in: session.expires_at_ms.saturating_sub(now) / 1000,
                session_id: token.session_id.to_b64(),
            })
        }
        RotateOutcome::Superseded => Err(("superseded", AuthError::InvalidGrant)),
        RotateOutcome::Reused => {
            core.read.drop_session(token.user_id, token.session_id);
            metrics::counter!(m::SESSIONS_REVOKED_TOTAL, "reason" => "reuse").increment(1);
            tracing::warn!(
                user_id = %token.user_id,
                session_id = %token.session_id,
                "refresh token reuse detected; session revoked"
            );
            Err(("reused", AuthError::InvalidGrant))
        }
        RotateOutcome::Invalid => Err(("invalid", AuthError::InvalidGrant)),
    }
}
