//! A signed-in caller's session: is it live, end it, end them all.
//! Cached liveness (the read model) is tombstoned before the store forgets
//! a session, so no cache outlives a revocation.

use portcullis_storage::{SessionId, UserId};

use crate::core::Core;
use crate::error::{AuthError, TokenProblem};
use crate::readmodel::Known;
use crate::tokens::VerifiedAccess;

/// Checks that a verified access token's session is still live (the read
/// model when it knows, else the store) and returns it when read.
pub(crate) async fn authorize(core: &Core, access: &VerifiedAccess) -> Result<(), AuthError> {
    let now = core.now_ms();
    match core.read.session(access.user_id, access.session_id, now) {
        Known::Live => return Ok(()),
        Known::Revoked => return Err(AuthError::Unauthenticated(TokenProblem::Revoked)),
        Known::Unknown => {}
    }
    let session = core
        .token_op(
            "get_session",
            core.tokens
                .get_session(access.user_id, access.session_id, now),
        )
        .await
        .map_err(|e| AuthError::from_store("get_session", e))?;
    match session {
        Some(s) => {
            core.read.put_session(&s, now);
            Ok(())
        }
        None => {
            core.read.revoke_session(access.user_id, access.session_id);
            Err(AuthError::Unauthenticated(TokenProblem::Revoked))
        }
    }
}

/// Ends a session: tombstone in the read model first (so nothing cached
/// outlives the delete, even if this operation is abandoned), then the store
/// delete. Counts the revocation under `reason` when the session existed.
pub(crate) async fn end_session(
    core: &Core,
    user_id: UserId,
    session_id: SessionId,
    reason: &'static str,
) -> Result<bool, AuthError> {
    core.read.revoke_session(user_id, session_id);
    let existed = core
        .token_op(
            "delete_session",
            core.tokens.delete_session(user_id, session_id),
        )
        .await
        .map_err(|e| AuthError::from_store("delete_session", e))?;
    if existed {
        metrics::counter!(crate::metrics::SESSIONS_REVOKED_TOTAL, "reason" => reason).increment(1);
    }
    Ok(existed)
}

/// Ends every session of `user` but `keep`, counting them under `reason`.
/// Cached liveness is tombstoned before the store forgets a session, so no
/// pod's cache outlives the delete.
pub(crate) async fn revoke_all_sessions(
    core: &Core,
    user: UserId,
    keep: Option<SessionId>,
    reason: &'static str,
) -> Result<u64, AuthError> {
    let live = core
        .token_op("list_sessions", core.tokens.list_sessions(user, 0))
        .await
        .map_err(|e| AuthError::from_store("list_sessions", e))?;
    for s in live.iter().filter(|s| Some(s.id) != keep) {
        core.read.revoke_session(user, s.id);
    }
    let ended = match keep {
        None => {
            let ids = core
                .token_op("delete_all_sessions", core.tokens.delete_all_sessions(user))
                .await
                .map_err(|e| AuthError::from_store("delete_all_sessions", e))?;
            for sid in &ids {
                core.read.revoke_session(user, *sid);
            }
            ids.len() as u64
        }
        Some(keep) => {
            let mut n = 0;
            for s in live.iter().filter(|s| s.id != keep) {
                if core
                    .token_op("delete_session", core.tokens.delete_session(user, s.id))
                    .await
                    .map_err(|e| AuthError::from_store("delete_session", e))?
                {
                    n += 1;
                }
            }
            n
        }
    };
    metrics::counter!(crate::metrics::SESSIONS_REVOKED_TOTAL, "reason" => reason).increment(ended);
    Ok(ended)
}
