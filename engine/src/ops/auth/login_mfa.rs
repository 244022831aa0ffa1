//! [`LoginMfa`]: the second step of a login with TOTP on: a TOTP code, a
//! recovery code, or a passkey assertion. Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::UserRecord;
use webauthn_rs::prelude::PublicKeyCredential;
use zeroize::Zeroizing;

use super::passkey::pending_first_factor;
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::metrics as m;
use crate::model::{ClientInfo, TokenGrant};
use crate::ops::Operation;
use crate::passkeys::{SecondFactor, amr, challenge_of};
use crate::responder::{Reply, Responder};
use crate::steps::access::with_onetime;
use crate::steps::lockout::{clear_lockout, mfa_key, refuse_if_locked};
use crate::steps::passkeys::{Refusal, accept, parse_credential, take_ceremony};
use crate::steps::record::{load_user, save_user};
use crate::steps::signin::{issue_device_token, open_session};
use crate::steps::totp::{CodeUse, apply, check, conflict_or, count_code};
use crate::tokens::onetime;

/// Finish a login with its second factor.
pub struct LoginMfa {
    /// The `mfa_token` of the first step.
    pub mfa_token: Zeroizing<String>,
    /// What proves the second factor.
    pub proof: SecondFactorProof,
    /// Caller.
    pub client: ClientInfo,
}

/// The second factor presented.
pub enum SecondFactorProof {
    /// A current TOTP code or an unused recovery code.
    Code(String),
    /// A passkey assertion (`PublicKeyCredential` JSON) answering the
    /// options of `/v1/auth/login/mfa/passkey/start`.
    Passkey(serde_json::Value),
}

impl Operation for LoginMfa {
    type Reply = TokenGrant;

    fn submit(self, engine: &Engine, reply: Responder<TokenGrant>) {
        let LoginMfa {
            mfa_token,
            proof,
            client,
        } = self;
        with_onetime(
            &engine.core,
            onetime::Purpose::MfaLogin,
            &mfa_token,
            AuthError::InvalidMfa,
            reply,
            move |c, t| run(c, t, proof, client),
        );
    }
}

/// The second step: the `mfa_token` and a code or a passkey open a session
/// (`amr`: the first factor, `pwd` or `fed`, and `otp`, `mfa` for a
/// recovery code, or `hwk`/`swk` for a passkey). The token is used up by
/// the success; until then a failed proof may be retried, each counting on
/// the second-factor counter; the one that locks it also kills the token.
async fn run(
    core: Arc<Core>,
    token: onetime::Presented,
    proof: SecondFactorProof,
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
    let first = pending_first_factor(&token, &current, now).ok_or(AuthError::InvalidMfa)?;
    let (updated, amr): (UserRecord, Vec<&str>) = match proof {
        SecondFactorProof::Code(code) => {
            let last_chance = count_code(&core, current.id).await?;
            let Some(used) = check(&core, &current, &state, &code)? else {
                return Err(failed(&core, &current, last_chance).await);
            };
            let mut updated = current.clone();
            updated.account.totp = Some(apply(&core, current.id, &state, &used)?);
            updated.account.mfa_login = None;
            save_user(&core, &current, &mut updated, &[])
                .await
                .map_err(|e| conflict_or(e, "update_user"))?;
            let second = match used {
                CodeUse::Totp(_) => "otp",
                CodeUse::Recovery(_) => "mfa",
            };
            (updated, vec![first, second])
        }
        SecondFactorProof::Passkey(value) => {
            let cred: PublicKeyCredential = parse_credential(value, "passkey_credential")?;
            let last_chance = count_code(&core, current.id).await?;
            let ceremony: Option<SecondFactor> =
                match challenge_of(cred.response.client_data_json.as_ref()) {
                    Some(challenge) => take_ceremony(&core, &challenge).await?,
                    None => None,
                };
            let Some(ceremony) = ceremony.filter(|c| c.user_id == current.id.to_uuid_string())
            else {
                Refusal::Invalid.count();
                return Err(failed(&core, &current, last_chance).await);
            };
            let wa = &core.webauthn;
            let asserted = match accept(
                &core,
                &current,
                cred.get_credential_id(),
                |_| wa.finish_passkey_authentication(&cred, &ceremony.state),
                |u| u.account.mfa_login = None,
            )
            .await
            {
                Ok(a) => a,
                Err(Refusal::Failed(e)) => return Err(e),
                Err(refusal) => {
                    refusal.count();
                    return Err(failed(&core, &current, last_chance).await);
                }
            };
            metrics::counter!(m::PASSKEY_SIGNINS_TOTAL, "result" => "second_factor").increment(1);
            let [key, _] = amr(asserted.backup_eligible);
            (asserted.user, vec![first, key])
        }
    };
    clear_lockout(&core, &mfa_key(current.id)).await?;
    let epoch = updated.account.credentials_epoch;
    let mut grant = open_session(&core, current.id, &client, &amr, Some(epoch)).await?;
    grant.device_token = Some(issue_device_token(
        &core,
        current.id,
        current.account.device_epoch,
        None,
    )?);
    Ok(grant)
}

/// A failed second factor: when it was the one that locked the step, the
/// `mfa_token` dies with it.
async fn failed(core: &Core, current: &UserRecord, last_chance: bool) -> AuthError {
    if last_chance {
        let mut updated = current.clone();
        updated.account.mfa_login = None;
        if let Err(e) = save_user(core, current, &mut updated, &[]).await {
            // The lock refuses the token anyway until it has expired.
            tracing::warn!(error = %e, "could not void the mfa_token of a locked second step");
        }
        tracing::warn!(user_id = %current.id, "second step locked after repeated failed attempts");
    }
    AuthError::InvalidMfa
}
