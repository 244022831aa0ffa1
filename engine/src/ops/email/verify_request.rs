//! [`RequestEmailVerification`]: mail a verification link to the bearer's
//! address (a new request replaces the previous token). Runs in the user's
//! partition.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::mail::letters;
use crate::model::{Bearer, ClientInfo};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::limits::shared_rate_limit;
use crate::steps::outbox::{mail_allowed, mail_link, queue_letter};
use crate::steps::record::{issue_token, load_user, save_user};
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::Purpose;

/// Mail a verification link to the bearer's address. Answers once the
/// letter is queued.
pub struct RequestEmailVerification {
    /// Access token.
    pub bearer: Bearer,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for RequestEmailVerification {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let client = self.client;
        authed(&engine.core, self.bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "verify", &client).await?;
            run(c, a).await
        });
    }
}

/// Queues a verification link to the bearer's address; a new request
/// replaces the previous token.
async fn run(core: Arc<Core>, access: VerifiedAccess) -> Reply<()> {
    authorize(&core, &access).await?;
    let mut admitted = false;
    for _ in 0..2 {
        let current = load_user(&core, access.user_id).await?;
        if current.email_verified {
            return Err(AuthError::AlreadyVerified);
        }
        if !admitted {
            mail_allowed(&core, "verify", Some(current.id), &current.email).await?;
            admitted = true;
        }
        let ttl = core.cfg.account.verify_email_ttl;
        let issued = issue_token(&core, Purpose::VerifyEmail, current.id, ttl)?;
        let mut updated = current.clone();
        updated.account.verify_email = Some(issued.pending);
        let link = mail_link(&core, "verify-email", &issued.token);
        let letter = letters::verify_email(&current.email, &link, ttl);
        let mail = queue_letter(&core, &mut updated, &letter)?;
        match save_user(&core, &current, &mut updated, &[mail]).await {
            Ok(_) => return Ok(()),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
