//! [`EnrollTotp`]: a new TOTP secret, sealed for the user, replacing an
//! unconfirmed one; not active until confirmed. Needs the current password:
//! a stolen access token alone cannot enroll the thief's authenticator.
//! Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::TotpState;
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::domain::Password;
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mfa::totp;
use crate::model::{Bearer, ClientInfo, SecretText};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::limits::{account_limit, shared_rate_limit};
use crate::steps::lockout::reverify_password;
use crate::steps::record::{load_user, save_user};
use crate::steps::sessions::authorize;
use crate::steps::totp::conflict_or;
use crate::tokens::VerifiedAccess;

/// Start a TOTP enrollment.
pub struct EnrollTotp {
    /// Access token.
    pub bearer: Bearer,
    /// The current password (a bare access token changes no credential).
    pub password: Password,
    /// Caller.
    pub client: ClientInfo,
}

/// A new TOTP secret, to be confirmed.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    /// The secret in base32.
    pub secret: SecretText,
    /// The `otpauth://` URI for authenticator apps.
    pub otpauth_uri: SecretText,
}

impl Operation for EnrollTotp {
    type Reply = TotpEnrollment;

    fn submit(self, engine: &Engine, reply: Responder<TotpEnrollment>) {
        let Some((slot, reply)) = engine.core.reserve_hash(reply) else {
            return;
        };
        let EnrollTotp {
            bearer,
            password,
            client,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "mfa", &client).await?;
            run(c, a, password, slot).await
        });
    }
}

/// A new secret, sealed for the user, replacing an unconfirmed one. Needs
/// the current password: a stolen access token alone cannot enroll the
/// thief's authenticator.
async fn run(
    core: Arc<Core>,
    access: VerifiedAccess,
    password: Password,
    slot: HashSlot,
) -> Reply<TotpEnrollment> {
    authorize(&core, &access).await?;
    account_limit(&core, "mfa", access.user_id, core.cfg.account_rate_limit).await?;
    let current = load_user(&core, access.user_id).await?;
    if current.mfa_enabled {
        return Err(AuthError::MfaAlreadyEnabled);
    }
    reverify_password(&core, &current, password, access.session_id, slot).await?;
    let secret = totp::generate_secret(core.token_svc.rng())
        .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
    let sealed = core
        .mailer
        .keys
        .seal(secret.as_ref(), &current.id.0)
        .map_err(|e| AuthError::Internal(format!("sealing a TOTP secret: {e}")))?;
    let mut updated = current.clone();
    updated.account.totp = Some(TotpState {
        secret_sealed: sealed,
        confirmed: false,
        last_step: None,
        recovery_hashes: Vec::new(),
        recovery_sealed: Vec::new(),
    });
    save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    Ok(TotpEnrollment {
        secret: SecretText(Zeroizing::new(totp::base32(secret.as_ref()))),
        otpauth_uri: SecretText(Zeroizing::new(totp::otpauth_uri(
            &core.cfg.account.totp_issuer,
            &current.email,
            secret.as_ref(),
        ))),
    })
}
