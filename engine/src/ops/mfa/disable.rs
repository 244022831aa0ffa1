//! [`DisableTotp`]: turn MFA off; needs the current password and a current
//! code or a recovery code. A credential event, mailed as a notice; every
//! other session ends. Runs in the user's partition.

use std::sync::Arc;

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
use crate::steps::lockout::{clear_lockout, mfa_key, reverify_password};
use crate::steps::outbox::notice;
use crate::steps::record::{credential_event, load_user, save_user};
use crate::steps::sessions::{authorize, revoke_all_sessions};
use crate::steps::totp::{check, conflict_or, count_code};
use crate::tokens::VerifiedAccess;

/// Turn TOTP MFA off (a valid code or recovery code, and the password).
pub struct DisableTotp {
    /// Access token.
    pub bearer: Bearer,
    /// A current code or a recovery code.
    pub code: String,
    /// The current password.
    pub password: Password,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for DisableTotp {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let Some((slot, reply)) = engine.core.reserve_hash(reply) else {
            return;
        };
        let DisableTotp {
            bearer,
            code,
            password,
            client,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "mfa", &client).await?;
            run(c, a, code, password, slot).await
        });
    }
}

/// Turns MFA off; needs the current password and a current code or a
/// recovery code.
async fn run(
    core: Arc<Core>,
    access: VerifiedAccess,
    code: String,
    password: Password,
    slot: HashSlot,
) -> Reply<()> {
    authorize(&core, &access).await?;
    account_limit(&core, "mfa", access.user_id, core.cfg.account_rate_limit).await?;
    let current = load_user(&core, access.user_id).await?;
    let Some(state) = current.account.totp.clone().filter(|t| t.confirmed) else {
        return Err(AuthError::InvalidMfaCode);
    };
    reverify_password(&core, &current, password, access.session_id, slot).await?;
    count_code(&core, current.id).await?;
    if check(&core, &current, &state, &code)?.is_none() {
        return Err(AuthError::InvalidMfaCode);
    }
    clear_lockout(&core, &mfa_key(current.id)).await?;
    let mut updated = current.clone();
    credential_event(&mut updated);
    updated.mfa_enabled = false;
    updated.account.totp = None;
    let letter = letters::mfa_turned_off(&current.email);
    let mail = notice(&core, "notice_mfa_off", &mut updated, &letter).await?;
    save_user(&core, &current, &mut updated, &mail)
        .await
        .map_err(|e| conflict_or(e, "update_user_with_mail"))?;
    revoke_all_sessions(&core, current.id, Some(access.session_id), "mfa_change").await?;
    Ok(())
}
