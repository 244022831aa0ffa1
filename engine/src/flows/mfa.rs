//! TOTP MFA: enroll, confirm (recovery codes), the second step of a login,
//! disable. All run in the user partition. The secret is sealed with the data
//! key for its user; recovery codes are kept as hashes; a code's time step is
//! remembered so it cannot be replayed; wrong codes count toward the lockout.

use std::sync::Arc;

use portcullis_storage::{StoreError, TotpState, UserId, UserRecord};
use ring::rand::SecureRandom as _;
use zeroize::Zeroizing;

use crate::command::{ClientInfo, Outcome, Reply, SecretText};
use crate::core::Core;
use crate::error::AuthError;
use crate::mfa::totp;
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::{self, Purpose};

/// Recovery codes issued at confirmation.
pub const RECOVERY_CODES: usize = 10;
const RECOVERY_LABEL: &[u8] = b"portcullis/recovery-code/v1";
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

/// Which second factor matched.
enum CodeUse {
    /// A TOTP code of this time step.
    Totp(u64),
    /// The recovery code at this index.
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
    for (i, stored) in totp_state.recovery_hashes.iter().enumerate() {
        let same: bool = subtle::ConstantTimeEq::ct_eq(&h[..], &stored[..]).into();
        if same && found.is_none() {
            found = Some(i);
        }
    }
    Ok(found.map(CodeUse::Recovery))
}

fn apply(state: &mut TotpState, used: &CodeUse) {
    match used {
        CodeUse::Totp(step) => state.last_step = Some(*step),
        CodeUse::Recovery(i) => {
            state.recovery_hashes.remove(*i);
        }
    }
}

/// A new secret, sealed for the user, replacing an unconfirmed one.
pub(crate) async fn enroll(core: Arc<Core>, access: VerifiedAccess) -> Reply {
    super::authorize(&core, &access).await?;
    let current = super::load_user(&core, access.user_id).await?;
    if current.mfa_enabled {
        return Err(AuthError::MfaAlreadyEnabled);
    }
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

/// Turns MFA on with a code of the enrolled secret; returns the recovery codes.
pub(crate) async fn confirm(core: Arc<Core>, access: VerifiedAccess, code: String) -> Reply {
    super::authorize(&core, &access).await?;
    let current = super::load_user(&core, access.user_id).await?;
    let Some(state) = current.account.totp.clone().filter(|t| !t.confirmed) else {
        return Err(if current.mfa_enabled {
            AuthError::MfaAlreadyEnabled
        } else {
            AuthError::InvalidMfaCode
        });
    };
    super::count_attempt(&core, &current.email, core.now_ms()).await?;
    let Some(CodeUse::Totp(step)) = check(&core, &current, &state, &code)? else {
        return Err(AuthError::InvalidMfaCode);
    };
    super::clear_lockout(&core, &current.email).await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    let mut hashes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        let mut raw = [0u8; 10];
        core.token_svc
            .rng()
            .fill(&mut raw)
            .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
        // 10 base32 characters: 50 bits, shown as XXXXX-XXXXX.
        let chars: String = raw
            .iter()
            .map(|b| char::from(BASE32[usize::from(b & 31)]))
            .collect();
        let code = format!("{}-{}", &chars[..5], &chars[5..]);
        hashes.push(recovery_hash(current.id, &code));
        codes.push(SecretText(Zeroizing::new(code)));
    }
    let mut updated = current.clone();
    updated.mfa_enabled = true;
    updated.account.totp = Some(TotpState {
        confirmed: true,
        last_step: Some(step),
        recovery_hashes: hashes,
        ..state
    });
    super::save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    Ok(Outcome::RecoveryCodes(codes))
}

/// Turns MFA off; needs a current code or a recovery code.
pub(crate) async fn disable(core: Arc<Core>, access: VerifiedAccess, code: String) -> Reply {
    super::authorize(&core, &access).await?;
    let current = super::load_user(&core, access.user_id).await?;
    let Some(state) = current.account.totp.clone().filter(|t| t.confirmed) else {
        return Err(AuthError::InvalidMfaCode);
    };
    super::count_attempt(&core, &current.email, core.now_ms()).await?;
    if check(&core, &current, &state, &code)?.is_none() {
        return Err(AuthError::InvalidMfaCode);
    }
    super::clear_lockout(&core, &current.email).await?;
    let mut updated = current.clone();
    updated.mfa_enabled = false;
    updated.account.totp = None;
    updated.account.mfa_login = None;
    super::save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    Ok(Outcome::Done)
}

/// After a right password: keeps a single-use `mfa_token` in the record and
/// asks for the second factor.
pub(crate) async fn begin(core: &Core, id: UserId) -> Reply {
    let current = super::load_user(core, id).await?;
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
/// counting toward the lockout.
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
    if !token.matches(current.account.mfa_login.as_ref(), now) {
        return Err(AuthError::InvalidMfa);
    }
    super::count_attempt(&core, &current.email, now).await?;
    let used = check(&core, &current, &state, &code)?;
    let Some(used) = used else {
        return Err(AuthError::InvalidMfa);
    };
    let mut updated = current.clone();
    let mut new_state = state;
    apply(&mut new_state, &used);
    updated.account.totp = Some(new_state);
    updated.account.mfa_login = None;
    super::save_user(&core, &current, &mut updated, &[])
        .await
        .map_err(|e| conflict_or(e, "update_user"))?;
    super::clear_lockout(&core, &current.email).await?;
    let amr: &[&str] = match used {
        CodeUse::Totp(_) => &["pwd", "otp"],
        CodeUse::Recovery(_) => &["pwd", "mfa"],
    };
    super::open_session(&core, current.id, &client, amr)
        .await
        .map(Outcome::Granted)
}
