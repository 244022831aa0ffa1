//! TOTP MFA: enroll, confirm (recovery codes), the second step of a login,
//! disable. All run in the user partition.
//!
//! The secret is sealed with the data key for its user. Recovery codes
//! carry 120 random bits; their SHA-256 hashes are sealed together with the
//! data key, so a leaked database without the data key yields nothing to
//! test guesses against, and one with it still faces 120-bit secrets. A code's time step is remembered so it cannot be
//! replayed. Wrong codes count on the account's own second-factor counter,
//! which only a completed second factor clears: after
//! [`EngineConfig::mfa_lockout`](crate::EngineConfig) failures the pending
//! `mfa_token` is dead and the second step is locked with backoff, whatever
//! the password does. Turning MFA on or off needs the current password as
//! well as a code, is a credential event, and is mailed as a notice.

use std::sync::Arc;

use portcullis_storage::{StoreError, TotpState, UserId, UserRecord};
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use crate::command::{ClientInfo, Outcome, Reply, SecretText};
use crate::core::Core;
use crate::domain::Password;
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::mail::notice_letter;
use crate::mfa::totp;
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::{self, Purpose};

/// Recovery codes issued at confirmation.
pub const RECOVERY_CODES: usize = 10;
/// Base32 characters of a recovery code (5 bits each: 120 bits).
const RECOVERY_CHARS: usize = 24;
const RECOVERY_LABEL: &[u8] = b"portcullis/recovery-code/v1";
/// Associated data of the sealed recovery hashes (besides the user id), so
/// the blob cannot stand in for the sealed TOTP secret or the reverse.
const RECOVERY_AAD: &[u8] = b"/recovery-codes";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn conflict_or(e: StoreError, op: &'static str) -> AuthError {
    match e {
        StoreError::VersionConflict { .. } => AuthError::Unavailable {
            retry_after_secs: 1,
        },
        e => AuthError::from_store(op, e),
    }
}

/// A recovery code as typed: upper case, without separators or spaces.
fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn recovery_hash(user: UserId, code: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(RECOVERY_LABEL);
    ctx.update(&user.0);
    ctx.update(normalize(code).as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

pub(crate) fn recovery_aad(user: UserId) -> Vec<u8> {
    let mut aad = user.0.to_vec();
    aad.extend_from_slice(RECOVERY_AAD);
    aad
}

/// Seals the hashes of the unused recovery codes for `user`.
pub(crate) fn seal_recovery(
    core: &Core,
    user: UserId,
    hashes: &[[u8; 32]],
) -> Result<Vec<u8>, AuthError> {
    let plain = Zeroizing::new(hashes.concat());
    core.mailer
        .keys
        .seal(&plain, &recovery_aad(user))
        .map_err(|e| AuthError::Internal(format!("sealing recovery codes: {e}")))
}

/// The hashes of the unused recovery codes: sealed ones, or the plain
/// hashes of an enrollment made before they were sealed.
fn recovery_hashes(
    core: &Core,
    user: UserId,
    state: &TotpState,
) -> Result<Vec<[u8; 32]>, AuthError> {
    if state.recovery_sealed.is_empty() {
        return Ok(state.recovery_hashes.clone());
    }
    let plain = core
        .mailer
        .keys
        .open(&state.recovery_sealed, &recovery_aad(user))
        .map_err(|e| AuthError::Internal(format!("opening recovery codes: {e}")))?;
    Ok(plain
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Which second factor matched.
enum CodeUse {
    /// A TOTP code of this time step.
    Totp(u64),
    /// The recovery code at this index (of the unused ones).
    Recovery(usize),
}

/// Checks `code` against the user's confirmed (or, for `confirming`, pending)
/// authenticator: a 6-digit TOTP code not replayed, or an unused recovery code.
fn check(
    core: &Core,
    user: &UserRecord,
    totp_state: &TotpState,
    code: &str,
) -> Result<Option<CodeUse>, AuthError> {
    let code = code.trim();
    if totp::is_code(code) {
        let secret = core
            .mailer
            .keys
            .open(&totp_state.secret_sealed, &user.id.0)
            .map_err(|e| AuthError::Internal(format!("opening a TOTP secret: {e}")))?;
        return Ok(
            totp::verify(&secret, code, core.now_ms(), totp_state.last_step).map(CodeUse::Totp),
        );
    }
    let h = recovery_hash(user.id, code);
    // Every stored hash is compared, in constant time.
    let mut found = None;
    for (i, stored) in recovery_hashes(core, user.id, totp_state)?
        .iter()
        .enumerate()
    {
        let same: bool = subtle::ConstantTimeEq::ct_eq(&h[..], &stored[..]).into();
        if same && found.is_none() {
            found = Some(i);
        }
    }
    Ok(found.map(CodeUse::Recovery))
}

/// The TOTP state after `used`: the step remembered, or the recovery code
/// removed (and the remaining hashes sealed, also for an older enrollment
/// whose hashes were kept in clear).
fn apply(
    core: &Core,
    user: UserId,
    state: &TotpState,
    used: &CodeUse,
) -> Result<TotpState, AuthError> {
    let mut next = state.clone();
    match used {
        CodeUse::Totp(step) => next.last_step = Some(*step),
        CodeUse::Recovery(i) => {
            let mut hashes = recovery_hashes(core, user, state)?;
            hashes.remove(*i);
            next.recovery_hashes.clear();
            next.recovery_sealed = seal_recovery(core, user, &hashes)?;
        }
    }
    Ok(next)
}

/// Counts a second-factor attempt on the user's own counter before the
/// code is checked; refused while it is locked.
async fn count_code(core: &Core, user: UserId) -> Result<bool, AuthError> {
    let status = super::count_attempt(core, &super::mfa_key(user), &core.cfg.mfa_lockout).await?;
    // This attempt took the last allowed failure: it is still checked, but
    // if it is wrong the pending second step dies with it.
    Ok(status.locked_until_ms.is_some())
}

/// A new secret, sealed for the user, replacing an unconfirmed one. Needs
/// the current password: a stolen access token alone cannot enroll the
/// thief's authenticator.
pub(crate) async fn enroll(
    core: Arc<Core>,
    access: VerifiedAccess,
    password: Password,
    slot: HashSlot,
) -> Reply {
    super::authorize(&core, &access).await?;
    super::account_limit(&core, "mfa", access.user_id, core.cfg.account_rate_limit).await?;
    let current = super::load_user(&core, access.user_id).await?;
    if current.mfa_enabled {
        return Err(AuthError::MfaAlreadyEnabled);
    }
    super::reverify_password(&core, &current, password, access.session_id, slot).await?;
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
    super::save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    Ok(Outcome::TotpEnrollment {
        secret: SecretText(Zeroizing::new(totp::base32(secret.as_ref()))),
        otpauth_uri: SecretText(Zeroizing::new(totp::otpauth_uri(
            &core.cfg.account.totp_issuer,
            &current.email,
            secret.as_ref(),
        ))),
    })
}

/// Turns MFA on with a code of the enrolled secret (the password was
/// checked at enrollment); returns the recovery codes.
pub(crate) async fn confirm(core: Arc<Core>, access: VerifiedAccess, code: String) -> Reply {
    super::authorize(&core, &access).await?;
    super::account_limit(&core, "mfa", access.user_id, core.cfg.account_rate_limit).await?;
    let current = super::load_user(&core, access.user_id).await?;
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
    super::clear_lockout(&core, &super::mfa_key(current.id)).await?;
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
    super::credential_event(&mut updated);
    updated.mfa_enabled = true;
    updated.account.totp = Some(TotpState {
        confirmed: true,
        last_step: Some(step),
        recovery_hashes: Vec::new(),
        recovery_sealed: seal_recovery(&core, current.id, &hashes)?,
        ..state
    });
    let notice = notice_letter(
        &current.email,
        "Two-step verification was turned on",
        "Two-step verification (an authenticator app) was just turned on for your account. \
         If this was not you, reset your password now and contact support.",
    );
    let mail = super::notice(&core, "notice_mfa_on", &mut updated, &notice).await?;
    super::save_user(&core, &current, &mut updated, &mail)
        .await
        .map_err(|e| conflict_or(e, "update_user_with_mail"))?;
    // The factor changed: every other session ends (OWASP ASVS 5.0 7.4.3).
    super::revoke_all_sessions(&core, current.id, Some(access.session_id), "mfa_change").await?;
    Ok(Outcome::RecoveryCodes(codes))
}

/// Turns MFA off; needs the current password and a current code or a
/// recovery code.
pub(crate) async fn disable(
    core: Arc<Core>,
    access: VerifiedAccess,
    code: String,
    password: Password,
    slot: HashSlot,
) -> Reply {
    super::authorize(&core, &access).await?;
    super::account_limit(&core, "mfa", access.user_id, core.cfg.account_rate_limit).await?;
    let current = super::load_user(&core, access.user_id).await?;
    let Some(state) = current.account.totp.clone().filter(|t| t.confirmed) else {
        return Err(AuthError::InvalidMfaCode);
    };
    super::reverify_password(&core, &current, password, access.session_id, slot).await?;
    count_code(&core, current.id).await?;
    if check(&core, &current, &state, &code)?.is_none() {
        return Err(AuthError::InvalidMfaCode);
    }
    super::clear_lockout(&core, &super::mfa_key(current.id)).await?;
    let mut updated = current.clone();
    super::credential_event(&mut updated);
    updated.mfa_enabled = false;
    updated.account.totp = None;
    let notice = notice_letter(
        &current.email,
        "Two-step verification was turned off",
        "Two-step verification was just turned off for your account: signing in now needs \
         only the password. If this was not you, reset your password now and contact support.",
    );
    let mail = super::notice(&core, "notice_mfa_off", &mut updated, &notice).await?;
    super::save_user(&core, &current, &mut updated, &mail)
        .await
        .map_err(|e| conflict_or(e, "update_user_with_mail"))?;
    super::revoke_all_sessions(&core, current.id, Some(access.session_id), "mfa_change").await?;
    Ok(Outcome::Done)
}

/// After a right password checked under credentials `epoch`: keeps a
/// single-use `mfa_token` in the record and asks for the second factor.
/// Refused while the second step is locked.
pub(crate) async fn begin(core: &Core, id: UserId, epoch: u64) -> Reply {
    super::refuse_if_locked(core, &super::mfa_key(id)).await?;
    let current = super::load_user(core, id).await?;
    if current.account.credentials_epoch != epoch {
        return Err(AuthError::InvalidCredentials);
    }
    let ttl = core.cfg.account.mfa_token_ttl;
    let issued = super::issue_token(core, Purpose::MfaLogin, id, ttl)?;
    let mut updated = current.clone();
    updated.account.mfa_login = Some(issued.pending);
    super::save_user(core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    Ok(Outcome::MfaRequired {
        mfa_token: SecretText(issued.token),
        expires_in: ttl.as_secs(),
    })
}

/// The second step: the `mfa_token` and a code open a session (`amr`:
/// `pwd` and `otp`, or `mfa` for a recovery code). The token is used up by
/// the success; until then a mistyped code may be retried, each wrong one
/// counting on the second-factor counter; the one that locks it also kills
/// the token.
pub(crate) async fn login(
    core: Arc<Core>,
    token: onetime::Presented,
    code: String,
    client: ClientInfo,
) -> Reply {
    let current = super::load_user(&core, token.user_id)
        .await
        .map_err(|_| AuthError::InvalidMfa)?;
    let now = core.now_ms();
    let Some(state) = current.account.totp.clone().filter(|t| t.confirmed) else {
        return Err(AuthError::InvalidMfa);
    };
    // While the second step is locked, every attempt is told to wait.
    super::refuse_if_locked(&core, &super::mfa_key(current.id)).await?;
    if !token.matches(current.account.mfa_login.as_ref(), now) {
        return Err(AuthError::InvalidMfa);
    }
    let last_chance = count_code(&core, current.id).await?;
    let Some(used) = check(&core, &current, &state, &code)? else {
        if last_chance {
            let mut updated = current.clone();
            updated.account.mfa_login = None;
            if let Err(e) = super::save_user(&core, &current, &mut updated, &[]).await {
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
    super::save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    super::clear_lockout(&core, &super::mfa_key(current.id)).await?;
    let amr: &[&str] = match used {
        CodeUse::Totp(_) => &["pwd", "otp"],
        CodeUse::Recovery(_) => &["pwd", "mfa"],
    };
    let epoch = current.account.credentials_epoch;
    let mut grant = super::open_session(&core, current.id, &client, amr, Some(epoch)).await?;
    grant.device_token = Some(super::login::issue_device_token(
        &core,
        current.id,
        current.account.device_epoch,
        None,
    )?);
    Ok(Outcome::Granted(grant))
}
