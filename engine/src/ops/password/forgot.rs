//! [`ForgotPassword`]: mail a reset link if the address has an account.
//! Always accepted, at once: neither the answer nor its timing says whether
//! the address has an account. The work runs after the answer, in the
//! email's partition, then the user's.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::core::{Core, Engine};
use crate::domain::Email;
use crate::error::AuthError;
use crate::mail::letters;
use crate::model::ClientInfo;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::limits::shared_rate_limit;
use crate::steps::outbox::{mail_allowed, mail_link, queue_letter};
use crate::steps::record::{issue_token, save_user};
use crate::tokens::onetime::Purpose;

/// Mail a password reset link if the address has an account.
pub struct ForgotPassword {
    /// The address.
    pub email: Email,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for ForgotPassword {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        // Answered before any lookup: first the mail limits of the address
        // (the same whether or not it has an account), then 202, then the
        // work, in the email partition under its admission bound.
        let core = engine.core.clone();
        engine.core.handle.spawn(async move {
            let ForgotPassword { email, client } = self;
            match admit(&core, &email, &client).await {
                Ok(()) => reply.send(Ok(())),
                Err(e) => {
                    reply.send(Err(e));
                    return;
                }
            }
            let key = PartitionKey::Email(email.as_str().to_owned());
            let done = Responder::new(|r: Reply<()>| {
                if let Err(e) = r {
                    tracing::warn!(error = %e, "a password reset request was not carried out");
                }
            });
            core.dispatch(key, done, move |c| run(c, email));
        });
    }
}

/// Admits a reset request for `email` under the mail limits of its
/// recipient address, whether or not the address has an account (so the
/// answer tells nothing about it). Runs before the 202 is sent.
async fn admit(core: &Core, email: &Email, client: &ClientInfo) -> Reply<()> {
    // The per-address limit shared by the pods first, so a request it
    // refuses spends no part of the recipient's mail budget.
    shared_rate_limit(core, "forgot", client).await?;
    mail_allowed(core, "reset", None, email.as_str()).await?;
    Ok(())
}

/// Queues a reset link if `email` has an account; does nothing otherwise.
/// The caller has already answered 202 either way.
async fn run(core: Arc<Core>, email: Email) -> Reply<()> {
    let Some(id) = core
        .user_op(
            "find_user_id_by_email",
            core.users.find_user_id_by_email(email.as_str()),
        )
        .await
        .map_err(|e| AuthError::from_store("find_user_id_by_email", e))?
    else {
        return Ok(());
    };
    let core2 = core.clone();
    core.call_in(PartitionKey::User(id), async move {
        issue_reset(&core2, id, email.as_str()).await
    })
    .await?
}

async fn issue_reset(core: &Core, id: portcullis_storage::UserId, email: &str) -> Reply<()> {
    for _ in 0..2 {
        let Some(current) = core
            .user_op("get_user", core.users.get_user(id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            // Only the record's own address (an email change may be under way).
            .filter(|u| u.email == email)
        else {
            return Ok(());
        };
        let ttl = core.cfg.account.password_reset_ttl;
        let issued = issue_token(core, Purpose::PasswordReset, id, ttl)?;
        let mut updated = current.clone();
        updated.account.password_reset = Some(issued.pending);
        let link = mail_link(core, "reset-password", &issued.token);
        let letter = letters::password_reset(&current.email, &link, ttl);
        let mail = queue_letter(core, &mut updated, &letter)?;
        match save_user(core, &current, &mut updated, &[mail]).await {
            Ok(_) => return Ok(()),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
