//! Lockout counters: of passwords per (account, address), per device token
//! and per account for untrusted clients; of second-factor codes per account;
//! of password re-entries per session. An attempt counts as a failure
//! before its secret is checked, in one atomic store operation.

use portcullis_storage::{SessionId, UserId};

use crate::core::Core;
use crate::error::AuthError;
use crate::model::ClientInfo;

/// Counts an attempt at a secret guarded by counter `key` as a failure
/// before the secret is checked, in one atomic store operation; a success
/// clears it ([`clear_lockout`]). An attempt that took the last allowed
/// failure is still checked, and clears the lock if the secret is right;
/// one made while the key was already locked (failures 0) is refused
/// unchecked. Only attempts the hash pool has already taken get here:
/// refusals for load (503) or rate (429) never count.
pub(crate) async fn count_attempt(
    core: &Core,
    key: &str,
    policy: &portcullis_storage::LockoutPolicy,
) -> Result<portcullis_storage::LockoutStatus, AuthError> {
    let now = core.now_ms();
    let attempt = core
        .token_op(
            "record_login_failure",
            core.tokens.record_login_failure(key, now, policy),
        )
        .await
        .map_err(|e| AuthError::from_store("record_login_failure", e))?;
    if let Some(until) = attempt.locked_until_ms
        && attempt.failures == 0
    {
        return Err(AuthError::TooManyAttempts {
            retry_after_secs: until.saturating_sub(now).div_ceil(1000).max(1),
        });
    }
    Ok(attempt)
}

/// Refuses at once while counter `key` is locked, without counting.
pub(crate) async fn refuse_if_locked(core: &Core, key: &str) -> Result<(), AuthError> {
    let now = core.now_ms();
    let status = core
        .token_op("lockout_status", core.tokens.lockout_status(key, now))
        .await
        .map_err(|e| AuthError::from_store("lockout_status", e))?;
    match status.locked_until_ms {
        Some(until) if until > now => Err(AuthError::TooManyAttempts {
            retry_after_secs: until.saturating_sub(now).div_ceil(1000).max(1),
        }),
        _ => Ok(()),
    }
}

/// Forgets the failed attempts of `key` (after a secret was right).
pub(crate) async fn clear_lockout(core: &Core, key: &str) -> Result<(), AuthError> {
    core.token_op(
        "clear_login_failures",
        core.tokens.clear_login_failures(key),
    )
    .await
    .map_err(|e| AuthError::from_store("clear_login_failures", e))
}

/// Lockout counter of password failures of `email` from one client address.
pub(crate) fn pair_key(email: &str, client: &ClientInfo) -> String {
    match client.ip {
        Some(ip) => format!("p:{email}|{}", crate::domain::rate_limit_key(ip)),
        None => format!("p:{email}|-"),
    }
}

/// Lockout counter of password failures of `email` from clients without a
/// valid device token.
pub(crate) fn account_key(email: &str) -> String {
    format!("a:{email}")
}

/// Lockout counter of one device token.
pub(crate) fn device_key(device: &crate::tokens::device::Device) -> String {
    use base64::Engine as _;
    format!(
        "d:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(device.device_id)
    )
}

/// Lockout counter of second-factor failures of a user.
pub(crate) fn mfa_key(user: UserId) -> String {
    format!("m:{user}")
}

/// Lockout counter of password re-entries within one session (password or
/// email change, MFA changes).
pub(crate) fn session_key(session: SessionId) -> String {
    format!("s:{session}")
}

/// Which counters a password attempt was counted on.
pub(crate) enum PasswordCounters {
    /// A client presenting a valid device token: only its own counter.
    Device(String),
    /// Any other client: its (account, address) pair before the check, and
    /// the account-wide counter of untrusted clients after a failure.
    Untrusted { pair: String, account: String },
}

/// Before a password of the account `email` is checked: refuses a locked
/// client (the device, or the pair and the account-wide lock of untrusted
/// clients) and counts the attempt as a failure of the device or the pair.
pub(crate) async fn guard_password(
    core: &Core,
    email: &str,
    client: &ClientInfo,
    device: Option<&crate::tokens::device::Device>,
) -> Result<PasswordCounters, AuthError> {
    if let Some(d) = device {
        let key = device_key(d);
        count_attempt(core, &key, &core.cfg.lockout).await?;
        return Ok(PasswordCounters::Device(key));
    }
    let account = account_key(email);
    refuse_if_locked(core, &account).await?;
    let pair = pair_key(email, client);
    count_attempt(core, &pair, &core.cfg.lockout).await?;
    Ok(PasswordCounters::Untrusted { pair, account })
}

/// After the check: a right password clears the device's or the pair's
/// counter (the account-wide one runs out with its window); a wrong one
/// from an untrusted client also counts toward the account-wide lock.
/// Counted after the check, that lock can overshoot by the attempts in
/// flight at once: at most one per pod, since a pod runs an account's
/// logins one at a time.
pub(crate) async fn settle_password(
    core: &Core,
    counters: &PasswordCounters,
    ok: bool,
) -> Result<(), AuthError> {
    match (counters, ok) {
        (PasswordCounters::Device(key), true)
        | (PasswordCounters::Untrusted { pair: key, .. }, true) => clear_lockout(core, key).await,
        (PasswordCounters::Device(_), false) => Ok(()),
        (PasswordCounters::Untrusted { account, .. }, false) => {
            let now = core.now_ms();
            let status = core
                .token_op(
                    "record_login_failure",
                    core.tokens
                        .record_login_failure(account, now, &core.cfg.account_lockout),
                )
                .await
                .map_err(|e| AuthError::from_store("record_login_failure", e))?;
            if status.locked_until_ms.is_some() && status.failures > 0 {
                tracing::warn!(
                    "account locked for clients without a device token after repeated failures"
                );
            }
            Ok(())
        }
    }
}

/// Re-verifies the signed-in `user`'s password in a reserved hash slot.
/// Counted per session (a signed-in client already proved the password
/// once; the account-wide lock of untrusted clients does not bind it): five
/// wrong passwords lock the session's re-entries with backoff.
pub(crate) async fn reverify_password(
    core: &Core,
    user: &portcullis_storage::UserRecord,
    password: crate::domain::Password,
    session: SessionId,
    slot: crate::hashpool::HashSlot,
) -> Result<(), AuthError> {
    let key = session_key(session);
    count_attempt(core, &key, &core.cfg.lockout).await?;
    let verified = slot
        .verify(password.into_secret(), &user.password_hash)
        .await?;
    if !verified.ok {
        return Err(AuthError::InvalidCredentials);
    }
    clear_lockout(core, &key).await
}
