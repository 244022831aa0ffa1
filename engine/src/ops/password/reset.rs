//! [`ResetPassword`]: set a new password with the mailed reset token. Runs
//! in the user's partition.

use std::sync::Arc;

use portcullis_storage::StoreError;
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::domain::Password;
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mail::letters;
use crate::model::ClientInfo;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::lockout::{account_key, clear_lockout, pair_key};
use crate::steps::outbox::notice;
use crate::steps::record::{password_event, save_user};
use crate::steps::sessions::revoke_all_sessions;
use crate::steps::signin::require_token_store;
use crate::tokens::onetime::{self, Purpose};

/// Set a new password with the mailed reset token.
pub struct ResetPassword {
    /// The token from the link.
    pub token: Zeroizing<String>,
    /// The new password.
    pub new_password: Password,
    /// Caller (its own lockout for the account is cleared).
    pub client: ClientInfo,
}

impl Operation for ResetPassword {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let core = &engine.core;
        match onetime::parse(Purpose::PasswordReset, &self.token) {
            Some(t) => {
                let Some((slot, reply)) = core.reserve_hash(reply) else {
                    return;
                };
                let ResetPassword {
                    new_password,
                    client,
                    ..
                } = self;
                core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                    run(c, t, new_password, client, slot)
                })
            }
            None => reply.send(Err(AuthError::InvalidToken)),
        }
    }
}

/// Sets the new password if `token` is the pending reset token, then ends
/// every session and clears the account's lockouts. The token is used up by
/// the same write, with every other pending token of the account (a
/// credential event); the reset proves the mailbox, so the address becomes
/// verified. A notice goes to the address.
async fn run(
    core: Arc<Core>,
    token: onetime::Presented,
    new_password: Password,
    client: ClientInfo,
    slot: HashSlot,
) -> Reply<()> {
    // The reset ends every session after it writes the new password: not
    // with a token store that cannot, or the old sessions would outlive it.
    require_token_store(&core)?;
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
        password_event(&mut updated);
        updated.email_verified = true;
        // The mailbox owner takes the account: a provider identity linked
        // on an email its provider did not verify may be whoever created
        // the account before them (pre-account hijacking), and goes.
        updated.account.identities.retain(|i| i.email_verified);
        let letter = letters::password_was_reset(&current.email);
        let mail = notice(&core, "notice_password", &mut updated, &letter).await?;
        match save_user(&core, &current, &mut updated, &mail).await {
            Ok(_) => {
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
    for gone in current
        .account
        .identities
        .iter()
        .filter(|i| !updated.account.identities.contains(i))
    {
        tracing::warn!(user_id = %updated.id, provider = %gone.provider, "password reset unlinked an identity linked on an unverified email");
        // The record no longer lists it; a failed release is a left-over
        // the next sign-in of that identity releases.
        if let Err(e) = core
            .users
            .release_identity(&gone.provider, &gone.subject, updated.id)
            .await
        {
            tracing::warn!(user_id = %updated.id, error = %e, "releasing an unlinked identity failed");
        }
    }
    revoke_all_sessions(&core, updated.id, None, "password_reset").await?;
    // The mailbox owner is back in: the account-wide lock and the one of
    // the address the reset came from are cleared. The second-factor lock
    // is not: a mailbox is no second factor, and only a completed second
    // factor clears it.
    clear_lockout(&core, &account_key(&updated.email)).await?;
    clear_lockout(&core, &pair_key(&updated.email, &client)).await?;
    Ok(())
}
