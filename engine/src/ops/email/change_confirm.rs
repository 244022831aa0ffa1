//! [`ConfirmEmailChange`]: move the account to the pending new address
//! (verified by the link) and tell the old address. Runs in the user's
//! partition; the store arbitrates the address against registrations and
//! other changes.

use std::sync::Arc;

use portcullis_storage::StoreError;
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::mail::letters;
use crate::model::UserView;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::with_onetime;
use crate::steps::outbox::notice;
use crate::steps::record::credential_event;
use crate::steps::sessions::revoke_all_sessions;
use crate::steps::signin::require_token_store;
use crate::tokens::onetime::{self, Purpose};

/// Confirm an email change with the token mailed to the new address.
pub struct ConfirmEmailChange {
    /// The token from the link.
    pub token: Zeroizing<String>,
}

impl Operation for ConfirmEmailChange {
    type Reply = Arc<UserView>;

    fn submit(self, engine: &Engine, reply: Responder<Arc<UserView>>) {
        with_onetime(
            &engine.core,
            Purpose::EmailChange,
            &self.token,
            AuthError::InvalidToken,
            reply,
            run,
        );
    }
}

/// Moves the account to the pending new address if `token` is the pending
/// one (the address is verified by the link), and tells the old address.
async fn run(core: Arc<Core>, token: onetime::Presented) -> Reply<Arc<UserView>> {
    // The change ends every session after it is written: not with a token
    // store that cannot.
    require_token_store(&core)?;
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
        credential_event(&mut updated);
        let letter = letters::email_was_changed(&current.email, &change.new_email);
        let mail = notice(&core, "notice_email", &mut updated, &letter).await?;
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
                revoke_all_sessions(&core, updated.id, None, "email_change").await?;
                return Ok(core.read.put_user(&updated));
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
