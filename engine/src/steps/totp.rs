//! The TOTP second factor's steps, shared by its operations and the login:
//! recovery codes, checking a code, and beginning the second step.
//!
//! The secret is sealed with the data key for its user. Recovery codes
//! carry 120 random bits; their SHA-256 hashes are sealed together with the
//! data key, so a leaked database without the data key yields nothing to
//! test guesses against, and one with it still faces 120-bit secrets. A
//! code's time step is remembered so it cannot be replayed. Wrong codes
//! count on the account's own second-factor counter, which only a completed
//! second factor clears: after
//! [`EngineConfig::mfa_lockout`](crate::EngineConfig) failures the pending
//! `mfa_token` is dead and the second step is locked with backoff, whatever
//! the password does.

use portcullis_storage::{StoreError, TotpState, UserId, UserRecord};
use zeroize::Zeroizing;

use crate::core::Core;
use crate::error::AuthError;
use crate::mfa::{recovery_aad, totp};
use crate::model::{MfaRequired, SecretText};
use crate::steps::lockout::{count_attempt, mfa_key, refuse_if_locked};
use crate::steps::record::{issue_token, load_user, save_user};
use crate::tokens::onetime::Purpose;

/// Recovery codes issued at confirmation.
pub const RECOVERY_CODES: usize = 10;
/// Base32 characters of a recovery code (5 bits each: 120 bits).
pub(crate) const RECOVERY_CHARS: usize = 24;
const RECOVERY_LABEL: &[u8] = b"portcullis/recovery-code/v1";
pub(crate) const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub(crate) fn conflict_or(e: StoreError, op: &'static str) -> AuthError {
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

pub(crate) fn recovery_hash(user: UserId, code: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(RECOVERY_LABEL);
    ctx.update(&user.0);
    ctx.update(normalize(code).as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
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
pub(crate) enum CodeUse {
    /// A TOTP code of this time step.
    Totp(u64),
    /// The recovery code at this index (of the unused ones).
    Recovery(usize),
}

/// Checks `code` against the user's confirmed (or, for `confirming`, pending)
/// authenticator: a 6-digit TOTP code not replayed, or an unused recovery code.
pub(crate) fn check(
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
pub(crate) fn apply(
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
pub(crate) async fn count_code(core: &Core, user: UserId) -> Result<bool, AuthError> {
    let status = count_attempt(core, &mfa_key(user), &core.cfg.mfa_lockout).await?;
    // This attempt took the last allowed failure: it is still checked, but
    // if it is wrong the pending second step dies with it.
    Ok(status.locked_until_ms.is_some())
}

/// How the first step of a login with a second factor was passed: the
/// session's `amr` says so once the second is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FirstFactor {
    /// A password (`pwd`).
    Password,
    /// A social sign-in (`fed`).
    Federated,
}

/// After a right password checked under credentials `epoch`: keeps a
/// single-use `mfa_token` in the record and asks for the second factor.
/// Refused while the second step is locked.
pub(crate) async fn begin(
    core: &Core,
    id: UserId,
    epoch: u64,
    first: FirstFactor,
) -> Result<MfaRequired, AuthError> {
    refuse_if_locked(core, &mfa_key(id)).await?;
    let current = load_user(core, id).await?;
    if current.account.credentials_epoch != epoch {
        return Err(AuthError::InvalidCredentials);
    }
    let ttl = core.cfg.account.mfa_token_ttl;
    let purpose = match first {
        FirstFactor::Password => Purpose::MfaLogin,
        FirstFactor::Federated => Purpose::MfaLoginFederated,
    };
    let issued = issue_token(core, purpose, id, ttl)?;
    let mut updated = current.clone();
    updated.account.mfa_login = Some(issued.pending);
    save_user(core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    Ok(MfaRequired {
        mfa_token: SecretText(issued.token),
        expires_in: ttl.as_secs(),
    })
}
