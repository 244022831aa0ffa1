//! [`ConfirmTotp`]: turn MFA on with a code of the enrolled secret (the
//! password was checked at enrollment); answers the recovery codes, shown
//! once. A credential event, mailed as a notice; every other session ends.
//! Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::TotpState;
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::mail::letters;
use crate::model::{Bearer, ClientInfo, SecretText};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::limits::{account_limit, shared_rate_limit};
use crate::steps::lockout::{clear_lockout, mfa_key};
use crate::steps::outbox::notice;
use crate::steps::record::{credential_event, load_user, save_user};
use crate::steps::sessions::{authorize, revoke_all_sessions};
use crate::steps::totp::{
    BASE32, CodeUse, RECOVERY_CHARS, RECOVERY_CODES, check, conflict_or, count_code, recovery_hash,
    seal_recovery,
};
use crate::tokens::VerifiedAccess;

/// Confirm the enrollment with a code: MFA is on; recovery codes issued.
pub struct ConfirmTotp {
    /// Access token.
    pub bearer: Bearer,
    /// A current code.
    pub code: String,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for ConfirmTotp {
    type Reply = Vec<SecretText>;

    fn submit(self, engine: &Engine, reply: Responder<Vec<SecretText>>) {
        let ConfirmTotp {
            bearer,
            code,
            client,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "mfa", &client).await?;
            run(c, a, code).await
        });
    }
}

/// Turns MFA on with a code of the enrolled secret (the password was
/// checked at enrollment); returns the recovery codes.
async fn run(core: Arc<Core>, access: VerifiedAccess, code: String) -> Reply<Vec<SecretText>> {
    authorize(&core, &access).await?;
    account_limit(&core, "mfa", access.user_id, core.cfg.account_rate_limit).await?;
    let current = load_user(&core, access.user_id).await?;
    let Some(state) = current.account.totp.clone().filter(|t| !t.confirmed) else {
        return Err(if current.mfa_enabled {
            AuthError::MfaAlreadyEnabled
        } else {
            AuthError::InvalidMfaCode
        });
    };
    count_code(&core, current.id).await?;
    let Some(CodeUse::Totp(step)) = check(&core, &current, &state, &code)? else {
        return Err(AuthError::InvalidMfaCode);
    };
    clear_lockout(&core, &mfa_key(current.id)).await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = Zeroizing::new([0u8; RECOVERY_CHARS]);
        core.token_svc
            .rng()
            .fill(raw.as_mut())
            .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
        // 24 base32 characters: 120 bits (OWASP ASVS 5.0 6.5.2: a lookup
        // secret of 112 bits or more may be kept under a standard hash),
        // shown as four groups of six.
        let chars: String = raw
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)]))
            .collect();
        let code = format!(
            "{}-{}-{}-{}",
            &chars[..6],
            &chars[6..12],
            &chars[12..18],
            &chars[18..]
        );
        hashes.push(recovery_hash(current.id, &code));
        codes.push(SecretText(Zeroizing::new(code)));
    }
    let mut updated = current.clone();
    credential_event(&mut updated);
    updated.mfa_enabled = true;
    updated.account.totp = Some(TotpState {
        confirmed: true,
        last_step: Some(step),
        recovery_hashes: Vec::new(),
        recovery_sealed: seal_recovery(&core, current.id, &hashes)?,
        ..state
    });
    let letter = letters::mfa_turned_on(&current.email);
    let mail = notice(&core, "notice_mfa_on", &mut updated, &letter).await?;
    save_user(&core, &current, &mut updated, &mail)
        .await
        .map_err(|e| conflict_or(e, "update_user_with_mail"))?;
    // The factor changed: every other session ends (OWASP ASVS 5.0 7.4.3).
    revoke_all_sessions(&core, current.id, Some(access.session_id), "mfa_change").await?;
    Ok(codes)
}
