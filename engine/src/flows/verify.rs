//! Email verification: mail a link (authenticated), confirm with its token.
//! Both run in the user partition.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::command::{Outcome, Reply};
use crate::core::Core;
use crate::error::AuthError;
use crate::mail::link_letter;
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::{self, Purpose};

/// Queues a verification link to the bearer's address; a new request
/// replaces the previous token.
pub(crate) async fn request(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::authorize(&core, &access).await?;
    let mut admitted = false;
    for _ in 0..2 {
        let current = super::load_user(&core, access.user_id).await?;
        if current.email_verified {
            return Err(AuthError::AlreadyVerified);
        }
        if !admitted {
            super::mail_allowed(&core, "verify", Some(current.id), &current.email).await?;
            admitted = true;
        }
        let ttl = core.cfg.account.verify_email_ttl;
        let issued = super::issue_token(&core, Purpose::VerifyEmail, current.id, ttl)?;
        let mut updated = current.clone();
        updated.account.verify_email = Some(issued.pending);
        let letter = link_letter(
            &current.email,
            "Confirm your email address",
            "Confirm your email address by opening this link:",
            &super::mail_link(&core, "verify-email", &issued.token),
            &format!(
                "The link works once, for {} hours. If you did not ask for it, ignore this message.",
                ttl.as_secs() / 3600
            ),
        );
        let mail = super::queue_letter(&core, &mut updated, &letter)?;
        match super::save_user(&core, &current, &mut updated, &[mail]).await {
            Ok(()) => return Ok(Outcome::Accepted),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

/// Marks the address verified if `token` is the pending one; the token is
/// used up by the same write.
pub(crate) async fn confirm(core: Arc<Core>, token: onetime::Presented) -> Reply {
    // Another writer may move the record on meanwhile: reload and check the
    // token again, a few times.
    for _ in 0..3 {
        let now = core.now_ms();
        let current = core
            .user_op("get_user", core.users.get_user(token.user_id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            .ok_or(AuthError::InvalidToken)?;
        if !token.matches(current.account.verify_email.as_ref(), now) {
            return Err(AuthError::InvalidToken);
        }
        let mut updated = current.clone();
        updated.email_verified = true;
        updated.account.verify_email = None;
        match super::save_user(&core, &current, &mut updated, &[]).await {
            Ok(()) => return Ok(Outcome::User(core.read.put_user(&updated))),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
