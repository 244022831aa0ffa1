//! The user record: read it, write its successor (the one way a flow
//! writes a user), credential events, and the single-use tokens it keeps.

use portcullis_storage::UserId;

use crate::clock::ms;
use crate::core::Core;
use crate::error::{AuthError, TokenProblem};

/// The bearer's record; a user deleted since the token was issued is a
/// revoked token.
pub(crate) async fn load_user(
    core: &Core,
    id: UserId,
) -> Result<portcullis_storage::UserRecord, AuthError> {
    core.user_op("get_user", core.users.get_user(id))
        .await
        .map_err(|e| AuthError::from_store("get_user", e))?
        .ok_or(AuthError::Unauthenticated(TokenProblem::Revoked))
}

/// Writes `updated` as the successor of `current` (version + 1), queuing
/// `mail` in the same write, and refreshes the cached view (returned). A
/// `VersionConflict` is the caller's to handle.
pub(crate) async fn save_user(
    core: &Core,
    current: &portcullis_storage::UserRecord,
    updated: &mut portcullis_storage::UserRecord,
    mail: &[portcullis_storage::OutboxRecord],
) -> Result<std::sync::Arc<crate::model::UserView>, portcullis_storage::StoreError> {
    // Every write moves the record's secrets to the newest data key.
    if let Err(e) = reseal_stale(core, updated) {
        tracing::warn!(user_id = %updated.id, error = %e, "could not re-seal a secret under the newest data key");
    }
    updated.version = current.version + 1;
    updated.updated_at_ms = core.now_ms();
    core.user_op(
        "update_user_with_mail",
        core.users
            .update_user_with_mail(updated, current.version, mail),
    )
    .await?;
    Ok(core.read.put_user(updated))
}

/// Re-seals the record's secrets (TOTP secret, recovery codes, passkeys) that are
/// sealed under an older data key; returns whether anything changed.
pub(crate) fn reseal_stale(
    core: &Core,
    user: &mut portcullis_storage::UserRecord,
) -> Result<bool, crate::datakey::DataKeyError> {
    let keys = &core.mailer.keys;
    let mut changed = false;
    let owner = crate::passkeys::sealing_owner(&user.id);
    for p in &mut user.account.passkeys {
        if let Some(s) = keys.reseal(&p.sealed, &owner)? {
            p.sealed = s;
            changed = true;
        }
    }
    let Some(t) = user.account.totp.as_mut() else {
        return Ok(changed);
    };
    if let Some(s) = keys.reseal(&t.secret_sealed, &user.id.0)? {
        t.secret_sealed = s;
        changed = true;
    }
    if !t.recovery_sealed.is_empty()
        && let Some(s) = keys.reseal(&t.recovery_sealed, &crate::mfa::recovery_aad(user.id))?
    {
        t.recovery_sealed = s;
        changed = true;
    }
    // Recovery codes of an enrollment made before they were sealed.
    if !t.recovery_hashes.is_empty() && t.recovery_sealed.is_empty() {
        let plain = zeroize::Zeroizing::new(t.recovery_hashes.concat());
        t.recovery_sealed = keys.seal(&plain, &crate::mfa::recovery_aad(user.id))?;
        t.recovery_hashes.clear();
        changed = true;
    }
    Ok(changed)
}

/// A password reset or change: [`credential_event`], and device tokens
/// issued before stop counting (whoever had the old password may hold one).
pub(crate) fn password_event(user: &mut portcullis_storage::UserRecord) {
    credential_event(user);
    user.account.device_epoch = user.account.device_epoch.wrapping_add(1);
}

/// A credential event (password reset or change, email change confirmed,
/// MFA turned on or off): every pending single-use token of the account is
/// void, and the credentials epoch moves on, so sign-ins that checked the
/// old credentials open no session.
pub(crate) fn credential_event(user: &mut portcullis_storage::UserRecord) {
    let a = &mut user.account;
    a.verify_email = None;
    a.password_reset = None;
    a.email_change = None;
    a.mfa_login = None;
    a.credentials_epoch = a.credentials_epoch.wrapping_add(1);
}

/// Issues a single-use token of `purpose` for `user`, valid for `ttl`.
pub(crate) fn issue_token(
    core: &Core,
    purpose: crate::tokens::onetime::Purpose,
    user: UserId,
    ttl: std::time::Duration,
) -> Result<crate::tokens::onetime::Issued, AuthError> {
    crate::tokens::onetime::issue(purpose, user, core.now_ms(), ms(ttl), core.token_svc.rng())
        .map_err(|_| AuthError::Internal("system random generator failed".into()))
}

/// A UUIDv7 from the injected clock.
pub(crate) fn new_user_id(now_ms: u64) -> UserId {
    let ts = uuid::Timestamp::from_unix(
        uuid::NoContext,
        now_ms / 1000,
        u32::try_from((now_ms % 1000) * 1_000_000).unwrap_or(0),
    );
    UserId(*uuid::Uuid::new_v7(ts).as_bytes())
}
