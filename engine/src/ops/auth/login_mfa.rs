//! [`LoginMfa`]: the second step of a login with TOTP on. Runs in the
//! user's partition.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::{ClientInfo, TokenGrant};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::with_onetime;
use crate::steps::lockout::{clear_lockout, mfa_key, refuse_if_locked};
use crate::steps::record::{load_user, save_user};
use crate::steps::signin::{issue_device_token, open_session};
use crate::steps::totp::{CodeUse, apply, check, conflict_or, count_code};
use crate::tokens::onetime::{self, Purpose};

/// Finish a login with its second factor.
pub struct LoginMfa {
    /// The `mfa_token` of the first step.
    pub mfa_token: Zeroizing<String>,
    /// A current TOTP code or an unused recovery code.
    pub code: String,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for LoginMfa {
    type Reply = TokenGrant;

    fn submit(self, engine: &Engine, reply: Responder<TokenGrant>) {
        let LoginMfa {
            mfa_token,
            code,
            client,
        } = self;
        with_onetime(
            &engine.core,
            Purpose::MfaLogin,
            &mfa_token,
            AuthError::InvalidMfa,
            reply,
            move |c, t| run(c, t, code, client),
        );
    }
}

/// The second step: the `mfa_token` and a code open a session (`amr`: the
/// first factor, `pwd` or `fed`, and `otp`, or `mfa` for a recovery code). The token is used up by
/// the success; until then a mistyped code may be retried, each wrong one
/// counting on the second-factor counter; the one that locks it also kills
/// the token.
async fn run(
    core: Arc<Core>,
    token: onetime::Presented,
    code: String,
    client: ClientInfo,
) -> Reply<TokenGrant> {
    let current = load_user(&core, token.user_id)
        .await
        .map_err(|_| AuthError::InvalidMfa)?;
    let now = core.now_ms();
    let Some(state) = current.account.totp.clone().filter(|t| t.confirmed) else {
        return Err(AuthError::InvalidMfa);
    };
    // While the second step is locked, every attempt is told to wait.
    refuse_if_locked(&core, &mfa_key(current.id)).await?;
    // The token's hash tells how the first step was passed.
    let pending = current.account.mfa_login.as_ref();
    let first = if token.matches(pending, now) {
        "pwd"
    } else if token
        .as_purpose(Purpose::MfaLoginFederated)
        .matches(pending, now)
    {
        "fed"
    } else {
        return Err(AuthError::InvalidMfa);
    };
    let last_chance = count_code(&core, current.id).await?;
    let Some(used) = check(&core, &current, &state, &code)? else {
        if last_chance {
            let mut updated = current.clone();
            updated.account.mfa_login = None;
            if let Err(e) = save_user(&core, &current, &mut updated, &[]).await {
                // The lock refuses the token anyway until it has expired.
                tracing::warn!(error = %e, "could not void the mfa_token of a locked second step");
            }
            tracing::warn!(user_id = %current.id, "second step locked after repeated wrong codes");
        }
        return Err(AuthError::InvalidMfa);
    };
    let mut updated = current.clone();
    updated.account.totp = Some(apply(&core, current.id, &state, &used)?);
    updated.account.mfa_login = None;
    save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    clear_lockout(&core, &mfa_key(current.id)).await?;
    let amr: &[&str] = match used {
        CodeUse::Totp(_) => &[first, "otp"],
        CodeUse::Recovery(_) => &[first, "mfa"],
    };
    let epoch = current.account.credentials_epoch;
    let mut grant = open_session(&core, current.id, &client, amr, Some(epoch)).await?;
    grant.device_token = Some(issue_device_token(
        &core,
        current.id,
        current.account.device_epoch,
        None,
    )?);
    Ok(grant)
}
