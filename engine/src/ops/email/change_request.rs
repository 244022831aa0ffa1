//! [`RequestEmailChange`]: re-verify the password (counted toward the
//! lockout like a login) and mail a confirmation link to the new address.
//! Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::{PendingEmailChange, StoreError};

use crate::core::{Core, Engine};
use crate::domain::{Email, FieldError, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mail::letters;
use crate::model::{Bearer, ClientInfo};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::limits::{account_limit, shared_rate_limit};
use crate::steps::lockout::reverify_password;
use crate::steps::outbox::{mail_allowed, mail_link, queue_letter};
use crate::steps::record::{issue_token, load_user, save_user};
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::Purpose;

/// Ask to move the bearer's account to a new address (password
/// re-verified). Answers once the confirmation letter is queued.
pub struct RequestEmailChange {
    /// Access token.
    pub bearer: Bearer,
    /// The new address.
    pub new_email: Email,
    /// The current password.
    pub password: Password,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for RequestEmailChange {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let Some((slot, reply)) = engine.core.reserve_hash(reply) else {
            return;
        };
        let RequestEmailChange {
            bearer,
            new_email,
            password,
            client,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "email_change", &client).await?;
            run(c, a, new_email, password, slot).await
        });
    }
}

/// Re-verifies the password (counted toward the lockout like a login) and
/// mails a confirmation link to `new_email`.
async fn run(
    core: Arc<Core>,
    access: VerifiedAccess,
    new_email: Email,
    password: Password,
    slot: HashSlot,
) -> Reply<()> {
    authorize(&core, &access).await?;
    account_limit(
        &core,
        "email_change",
        access.user_id,
        core.cfg.account_rate_limit,
    )
    .await?;
    let current = load_user(&core, access.user_id).await?;
    if new_email.as_str() == current.email {
        return Err(AuthError::InvalidRequest(vec![FieldError::new(
            "new_email",
            "is the account's current address",
        )]));
    }
    reverify_password(&core, &current, password, access.session_id, slot).await?;
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
    mail_allowed(&core, "email_change", Some(current.id), new_email.as_str()).await?;
    let ttl = core.cfg.account.email_change_ttl;
    let issued = issue_token(&core, Purpose::EmailChange, current.id, ttl)?;
    let mut updated = current.clone();
    updated.account.email_change = Some(PendingEmailChange {
        token: issued.pending,
        new_email: new_email.as_str().to_owned(),
    });
    let link = mail_link(&core, "confirm-email-change", &issued.token);
    let letter = letters::email_change(new_email.as_str(), &link, ttl);
    let mail = queue_letter(&core, &mut updated, &letter)?;
    match save_user(&core, &current, &mut updated, &[mail]).await {
        Ok(_) => Ok(()),
        Err(StoreError::VersionConflict { .. }) => Err(AuthError::Unavailable {
            retry_after_secs: 1,
        }),
        Err(e) => Err(AuthError::from_store("update_user_with_mail", e)),
    }
}
