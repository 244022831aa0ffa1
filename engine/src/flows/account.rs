//! Authenticated account operations, in the user partition: logout,
//! logout-all, profile read and update, session list and delete.

use std::sync::Arc;

use portcullis_storage::{SessionId, StoreError};

use crate::command::{Outcome, Patch, ProfilePatch, Reply};
use crate::core::Core;
use crate::error::{AuthError, TokenProblem};
use crate::tokens::VerifiedAccess;
use crate::views::session_view;

/// Ends the token's session.
pub(crate) async fn logout(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::authorize(&core, &access).await?;
    super::end_session(&core, access.user_id, access.session_id, "logout").await?;
    Ok(Outcome::Done)
}

/// Ends every session of the token's user. The credentials epoch moves on
/// first, so a sign-in that checked the password before and opens its
/// session after is refused (and device tokens issued before stop counting).
pub(crate) async fn logout_all(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::authorize(&core, &access).await?;
    core.read.revoke_session(access.user_id, access.session_id);
    let mut bumped = false;
    for _ in 0..3 {
        let current = super::load_user(&core, access.user_id).await?;
        let mut updated = current.clone();
        updated.account.credentials_epoch = updated.account.credentials_epoch.wrapping_add(1);
        // A second step begun before opens no session after.
        updated.account.mfa_login = None;
        match super::save_user(&core, &current, &mut updated, &[]).await {
            Ok(()) => {
                bumped = true;
                break;
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    if !bumped {
        return Err(AuthError::Unavailable {
            retry_after_secs: 1,
        });
    }
    super::revoke_all_sessions(&core, access.user_id, None, "logout_all").await?;
    Ok(Outcome::Done)
}

/// The token's user, read from the store (the slow path of `me`).
pub(crate) async fn me(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::authorize(&core, &access).await?;
    let user = core
        .user_op("get_user", core.users.get_user(access.user_id))
        .await
        .map_err(|e| AuthError::from_store("get_user", e))?
        .ok_or(AuthError::Unauthenticated(TokenProblem::Revoked))?;
    Ok(Outcome::User(core.read.put_user(&user)))
}

/// Applies a profile patch.
pub(crate) async fn update_me(
    core: Arc<Core>,
    access: VerifiedAccess,
    patch: ProfilePatch,
) -> Reply {
    super::authorize(&core, &access).await?;
    // The partition serializes this user's updates in this process; the
    // version check catches a concurrent writer elsewhere, so retry once.
    for _ in 0..2 {
        let current = core
            .user_op("get_user", core.users.get_user(access.user_id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            .ok_or(AuthError::Unauthenticated(TokenProblem::Revoked))?;
        let mut updated = current.clone();
        apply(&mut updated.name, &patch.name);
        apply(&mut updated.picture_url, &patch.picture_url);
        if updated == current {
            return Ok(Outcome::User(core.read.put_user(&current)));
        }
        updated.version = current.version + 1;
        updated.updated_at_ms = core.now_ms();
        match core
            .user_op(
                "update_user",
                core.users.update_user(&updated, current.version),
            )
            .await
        {
            Ok(()) => return Ok(Outcome::User(core.read.put_user(&updated))),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

fn apply(field: &mut Option<String>, patch: &Patch<String>) {
    match patch {
        Patch::Keep => {}
        Patch::Clear => *field = None,
        Patch::Set(v) => *field = Some(v.clone()),
    }
}

/// The token's user's live sessions.
pub(crate) async fn list_sessions(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::authorize(&core, &access).await?;
    let sessions = core
        .token_op(
            "list_sessions",
            core.tokens.list_sessions(access.user_id, core.now_ms()),
        )
        .await
        .map_err(|e| AuthError::from_store("list_sessions", e))?;
    Ok(Outcome::Sessions(
        sessions
            .iter()
            .map(|s| session_view(s, access.session_id))
            .collect(),
    ))
}

/// Ends one of the token's user's sessions.
pub(crate) async fn delete_session(
    core: Arc<Core>,
    access: VerifiedAccess,
    target: Option<SessionId>,
) -> Reply {
    super::authorize(&core, &access).await?;
    let Some(target) = target else {
        return Err(AuthError::NotFound);
    };
    if !super::end_session(&core, access.user_id, target, "deleted").await? {
        return Err(AuthError::NotFound);
    }
    Ok(Outcome::Done)
}
