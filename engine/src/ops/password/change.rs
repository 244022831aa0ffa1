//! [`ChangePassword`]: change the bearer's password after re-verifying the
//! current one (on the hash pool, counted per session), then end every
//! other session and mail a notice. Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::core::{Core, Engine};
use crate::domain::Password;
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mail::letters;
use crate::model::{Bearer, ClientInfo};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::limits::{account_limit, shared_rate_limit};
use crate::steps::lockout::{clear_lockout, count_attempt, session_key};
use crate::steps::outbox::notice;
use crate::steps::record::{load_user, password_event, save_user};
use crate::steps::sessions::{authorize, revoke_all_sessions};
use crate::tokens::VerifiedAccess;

/// Change the bearer's password (the current one re-verified).
pub struct ChangePassword {
    /// Access token.
    pub bearer: Bearer,
    /// The current password.
    pub current_password: Password,
    /// The new password.
    pub new_password: Password,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for ChangePassword {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let Some((slot, reply)) = engine.core.reserve_hash(reply) else {
            return;
        };
        let ChangePassword {
            bearer,
            current_password,
            new_password,
            client,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "password_change", &client).await?;
            run(c, a, current_password, new_password, slot).await
        });
    }
}

/// Changes the bearer's password after re-verifying the current one (on the
/// hash pool, counted toward the lockout like a login), then ends every
/// other session and mails a notice.
async fn run(
    core: Arc<Core>,
    access: VerifiedAccess,
    current_password: Password,
    new_password: Password,
    slot: HashSlot,
) -> Reply<()> {
    authorize(&core, &access).await?;
    account_limit(
        &core,
        "password_change",
        access.user_id,
        core.cfg.account_rate_limit,
    )
    .await?;
    let user = load_user(&core, access.user_id).await?;
    core.passwords
        .check("new_password", &new_password, &user.email)?;
    // The current password is checked and the new one hashed in one job of
    // the place reserved at admission, counted per session.
    let key = session_key(access.session_id);
    count_attempt(&core, &key, &core.cfg.lockout).await?;
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
    clear_lockout(&core, &key).await?;
    let mut updated = user.clone();
    updated.password_hash = password_hash;
    // A reset or email-change link mailed earlier must not undo this change.
    password_event(&mut updated);
    let letter = letters::password_was_changed(&user.email);
    let mail = notice(&core, "notice_password", &mut updated, &letter).await?;
    match save_user(&core, &user, &mut updated, &mail).await {
        Ok(_) => {}
        // Changed concurrently (another pod): ask the client to retry.
        Err(StoreError::VersionConflict { .. }) => {
            return Err(AuthError::Unavailable {
                retry_after_secs: 1,
            });
        }
        Err(e) => return Err(AuthError::from_store("update_user_with_mail", e)),
    }
    revoke_all_sessions(
        &core,
        updated.id,
        Some(access.session_id),
        "password_change",
    )
    .await?;
    Ok(())
}
