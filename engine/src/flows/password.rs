//! Password forgot and reset. Forgot runs in the email partition (resolve
//! the account) and then the user's; reset in the user partition.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::command::{ClientInfo, Outcome, Reply};
use crate::core::Core;
use crate::domain::{Email, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mail::{link_letter, notice_letter};
use crate::shard::PartitionKey;
use crate::tokens::onetime::{self, Purpose};

/// Admits a reset request for `email` under the mail limits of its
/// recipient address, whether or not the address has an account (so the
/// answer tells nothing about it). Runs before the 202 is sent.
pub(crate) async fn forgot_allowed(core: Arc<Core>, email: Email, client: ClientInfo) -> Reply {
    // The per-address limit shared by the pods first, so a request it
    // refuses spends no part of the recipient's mail budget.
    super::shared_rate_limit(&core, "forgot", &client).await?;
    super::mail_allowed(&core, "reset", None, email.as_str()).await?;
    Ok(Outcome::Accepted)
}

/// Queues a reset link if `email` has an account; does nothing otherwise.
/// The caller has already answered 202 either way.
pub(crate) async fn forgot(core: Arc<Core>, email: Email) -> Reply {
    let Some(id) = core
        .user_op(
            "find_user_id_by_email",
            core.users.find_user_id_by_email(email.as_str()),
        )
        .await
        .map_err(|e| AuthError::from_store("find_user_id_by_email", e))?
    else {
        return Ok(Outcome::Done);
    };
    let core2 = core.clone();
    core.call_in(PartitionKey::User(id), async move {
        issue_reset(&core2, id, email.as_str()).await
    })
    .await?
}

async fn issue_reset(core: &Core, id: portcullis_storage::UserId, email: &str) -> Reply {
    for _ in 0..2 {
        let Some(current) = core
            .user_op("get_user", core.users.get_user(id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            // Only the record's own address (an email change may be under way).
            .filter(|u| u.email == email)
        else {
            return Ok(Outcome::Done);
        };
        let ttl = core.cfg.account.password_reset_ttl;
        let issued = super::issue_token(core, Purpose::PasswordReset, id, ttl)?;
        let mut updated = current.clone();
        updated.account.password_reset = Some(issued.pending);
        let letter = link_letter(
            &current.email,
            "Reset your password",
            "Someone asked to reset the password of your account. Choose a new one here:",
            &super::mail_link(core, "reset-password", &issued.token),
            &format!(
                "The link works once, for {} minutes, and signs you out everywhere. \
                 If you did not ask for it, ignore this message: your password stays as it is.",
                ttl.as_secs() / 60
            ),
        );
        let mail = super::queue_letter(core, &mut updated, &letter)?;
        match super::save_user(core, &current, &mut updated, &[mail]).await {
            Ok(()) => return Ok(Outcome::Done),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

/// Sets the new password if `token` is the pending reset token, then ends
/// every session and clears the account's lockouts. The token is used up by
/// the same write, with every other pending token of the account (a
/// credential event); the reset proves the mailbox, so the address becomes
/// verified. A notice goes to the address.
pub(crate) async fn reset(
    core: Arc<Core>,
    token: onetime::Presented,
    new_password: Password,
    client: ClientInfo,
    slot: HashSlot,
) -> Reply {
    // The reset ends every session after it writes the new password: not
    // with a token store that cannot, or the old sessions would outlive it.
    super::require_token_store(&core)?;
    let load = || async {
        core.user_op("get_user", core.users.get_user(token.user_id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            .ok_or(AuthError::InvalidToken)
    };
    let mut current = load().await?;
    if !token.matches(current.account.password_reset.as_ref(), core.now_ms()) {
        return Err(AuthError::InvalidToken);
    }
    core.passwords
        .check("new_password", &new_password, &current.email)?;
    let password_hash = slot.hash(new_password.into_secret()).await?;
    // Another writer (the mailer, the re-sealing pass, another pod) may
    // move the record on: reload and check the token again, a few times.
    let mut saved = None;
    for _ in 0..3 {
        let mut updated = current.clone();
        updated.password_hash = password_hash.clone();
        super::password_event(&mut updated);
        updated.email_verified = true;
        let notice = notice_letter(
            &current.email,
            "Your password was changed",
            "The password of your account was just reset, and every session was signed out. \
             If this was not you, reset it again now and check your email account's security.",
        );
        let mail = super::notice(&core, "notice_password", &mut updated, &notice).await?;
        match super::save_user(&core, &current, &mut updated, &mail).await {
            Ok(()) => {
                saved = Some(updated);
                break;
            }
            Err(StoreError::VersionConflict { .. }) => {
                current = load().await?;
                // If the concurrent write used this token, it is gone.
                if !token.matches(current.account.password_reset.as_ref(), core.now_ms()) {
                    return Err(AuthError::InvalidToken);
                }
            }
            Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
        }
    }
    let Some(updated) = saved else {
        return Err(AuthError::Unavailable {
            retry_after_secs: 1,
        });
    };
    super::revoke_all_sessions(&core, updated.id, None, "password_reset").await?;
    // The mailbox owner is back in: the account-wide lock and the one of
    // the address the reset came from are cleared. The second-factor lock
    // is not: a mailbox is no second factor, and only a completed second
    // factor clears it.
    super::clear_lockout(&core, &super::account_key(&updated.email)).await?;
    super::clear_lockout(&core, &super::pair_key(&updated.email, &client)).await?;
    Ok(Outcome::Done)
}

/// Changes the bearer's password after re-verifying the current one (on the
/// hash pool, counted toward the lockout like a login), then ends every
/// other session and mails a notice.
pub(crate) async fn change(
    core: Arc<Core>,
    access: crate::tokens::VerifiedAccess,
    current_password: Password,
    new_password: Password,
    slot: HashSlot,
) -> Reply {
    super::authorize(&core, &access).await?;
    super::account_limit(
        &core,
        "password_change",
        access.user_id,
        core.cfg.account_rate_limit,
    )
    .await?;
    let user = super::load_user(&core, access.user_id).await?;
    core.passwords
        .check("new_password", &new_password, &user.email)?;
    // The current password is checked and the new one hashed in one job of
    // the place reserved at admission, counted per session.
    let key = super::session_key(access.session_id);
    super::count_attempt(&core, &key, &core.cfg.lockout).await?;
    let hashed = slot
        .verify_then_hash(
            current_password.into_secret(),
            &user.password_hash,
            new_password.into_secret(),
        )
        .await?;
    let Some(password_hash) = hashed else {
        return Err(AuthError::InvalidCredentials);
    };
    super::clear_lockout(&core, &key).await?;
    let mut updated = user.clone();
    updated.password_hash = password_hash;
    // A reset or email-change link mailed earlier must not undo this change.
    super::password_event(&mut updated);
    let notice = notice_letter(
        &user.email,
        "Your password was changed",
        "The password of your account was just changed, and your other sessions were \
         signed out. If this was not you, reset your password now.",
    );
    let mail = super::notice(&core, "notice_password", &mut updated, &notice).await?;
    match super::save_user(&core, &user, &mut updated, &mail).await {
        Ok(()) => {}
        // Changed concurrently (another pod): ask the client to retry.
        Err(StoreError::VersionConflict { .. }) => {
            return Err(AuthError::Unavailable {
                retry_after_secs: 1,
            });
        }
        Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
    }
    super::revoke_all_sessions(
        &core,
        updated.id,
        Some(access.session_id),
        "password_change",
    )
    .await?;
    Ok(Outcome::Done)
}
