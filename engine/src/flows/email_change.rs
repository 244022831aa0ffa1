//! Email change: request (password re-verified, a link to the new address)
//! and confirm (the index swapped atomically, a notice to the old address).
//! Both run in the user partition; the store arbitrates the new address
//! against registrations and other changes.

use std::sync::Arc;

use portcullis_storage::{PendingEmailChange, StoreError};

use crate::command::{Outcome, Reply};
use crate::core::Core;
use crate::domain::{Email, FieldError, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mail::{link_letter, notice_letter};
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::{self, Purpose};

/// Re-verifies the password (counted toward the lockout like a login) and
/// mails a confirmation link to `new_email`.
pub(crate) async fn request(
    core: Arc<Core>,
    access: VerifiedAccess,
    new_email: Email,
    password: Password,
    slot: HashSlot,
) -> Reply {
    super::authorize(&core, &access).await?;
    super::account_limit(
        &core,
        "email_change",
        access.user_id,
        core.cfg.account_rate_limit,
    )
    .await?;
    let current = super::load_user(&core, access.user_id).await?;
    if new_email.as_str() == current.email {
        return Err(AuthError::InvalidRequest(vec![FieldError::new(
            "new_email",
            "is the account's current address",
        )]));
    }
    super::reverify_password(&core, &current, password, access.session_id, slot).await?;
    // Checked again, atomically, when the change is confirmed.
    if core
        .user_op(
            "find_user_id_by_email",
            core.users.find_user_id_by_email(new_email.as_str()),
        )
        .await
        .map_err(|e| AuthError::from_store("find_user_id_by_email", e))?
        .is_some()
    {
        return Err(AuthError::EmailTaken);
    }
    // Per account and per recipient: nobody can bomb an address with
    // confirmation links, from one account or many.
    super::mail_allowed(&core, "email_change", Some(current.id), new_email.as_str()).await?;
    let ttl = core.cfg.account.email_change_ttl;
    let issued = super::issue_token(&core, Purpose::EmailChange, current.id, ttl)?;
    let mut updated = current.clone();
    updated.account.email_change = Some(PendingEmailChange {
        token: issued.pending,
        new_email: new_email.as_str().to_owned(),
    });
    let letter = link_letter(
        new_email.as_str(),
        "Confirm your new email address",
        "Confirm this address as the new sign-in address of your account by opening this link:",
        &super::mail_link(&core, "confirm-email-change", &issued.token),
        &format!(
            "The link works once, for {} hours. If you did not ask for it, ignore this message.",
            ttl.as_secs() / 3600
        ),
    );
    let mail = super::queue_letter(&core, &mut updated, &letter)?;
    match super::save_user(&core, &current, &mut updated, &[mail]).await {
        Ok(()) => Ok(Outcome::Accepted),
        Err(StoreError::VersionConflict { .. }) => Err(AuthError::Unavailable {
            retry_after_secs: 1,
        }),
        Err(e) => Err(AuthError::from_store("update_user_with_mail", e)),
    }
}

/// Moves the account to the pending new address if `token` is the pending
/// one (the address is verified by the link), and tells the old address.
pub(crate) async fn confirm(core: Arc<Core>, token: onetime::Presented) -> Reply {
    // The change ends every session after it is written: not with a token
    // store that cannot.
    super::require_token_store(&core)?;
    // Another writer may move the record on meanwhile: reload and check the
    // token again, a few times.
    for _ in 0..3 {
        let now = core.now_ms();
        let current = core
            .user_op("get_user", core.users.get_user(token.user_id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            .ok_or(AuthError::InvalidToken)?;
        let Some(change) = current.account.email_change.clone() else {
            return Err(AuthError::InvalidToken);
        };
        if !token.matches(Some(&change.token), now) {
            return Err(AuthError::InvalidToken);
        }
        let mut updated = current.clone();
        updated.email = change.new_email.clone();
        updated.email_verified = true;
        super::credential_event(&mut updated);
        let notice = notice_letter(
            &current.email,
            "Your sign-in address was changed",
            &format!(
                "The sign-in address of your account was changed to {}, and every session \
                 was signed out. If this was not you, reset your password and contact support.",
                change.new_email
            ),
        );
        let mail = super::notice(&core, "notice_email", &mut updated, &notice).await?;
        updated.version = current.version + 1;
        updated.updated_at_ms = now;
        match core
            .user_op(
                "change_email_with_mail",
                core.users
                    .change_email_with_mail(&updated, current.version, &mail),
            )
            .await
        {
            Ok(()) => {
                // The sign-in address changed: every session ends, so nobody
                // keeps access on the strength of the old address.
                super::revoke_all_sessions(&core, updated.id, None, "email_change").await?;
                return Ok(Outcome::User(core.read.put_user(&updated)));
            }
            Err(StoreError::EmailTaken) => return Err(AuthError::EmailTaken),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("change_email_with_mail", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
