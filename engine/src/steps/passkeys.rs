//! Passkey steps: ceremony state stashed in the token store (sealed, single
//! take, any pod), the account's passkeys sealed in its record, and the
//! checks every assertion goes through.

use portcullis_storage::{StoredPasskey, UserId, UserRecord};
use serde::Serialize;
use serde::de::DeserializeOwned;
use webauthn_rs::prelude::{AuthenticationResult, Passkey, WebauthnError};

use crate::core::Core;
use crate::domain::FieldError;
use crate::error::AuthError;
use crate::metrics as m;
use crate::passkeys::{CHALLENGE_TTL, sealing_owner};
use crate::steps::outbox::notice;
use crate::steps::record::save_user;
use crate::steps::social::{stash, take};

/// A stashed ceremony: it knows when it stops counting.
pub(crate) trait Ceremony: Serialize + DeserializeOwned {
    /// The token-store purpose it is stashed under.
    const PURPOSE: &'static str;
    /// When it stops counting (Unix ms).
    fn expires_at_ms(&self) -> u64;
}

impl Ceremony for crate::passkeys::Registration {
    const PURPOSE: &'static str = "passkey-register";
    fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
}

impl Ceremony for crate::passkeys::SignIn {
    const PURPOSE: &'static str = "passkey-signin";
    fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
}

impl Ceremony for crate::passkeys::SecondFactor {
    const PURPOSE: &'static str = "passkey-mfa";
    fn expires_at_ms(&self) -> u64 {
        self.expires_at_ms
    }
}

/// When a ceremony started now stops counting.
pub(crate) fn deadline(core: &Core) -> u64 {
    core.now_ms()
        .saturating_add(crate::clock::ms(CHALLENGE_TTL))
}

/// Stashes `ceremony` under `key` (its challenge, or a challenge id).
pub(crate) async fn keep<C: Ceremony>(
    core: &Core,
    key: &str,
    ceremony: &C,
) -> Result<(), AuthError> {
    stash(core, C::PURPOSE, key, ceremony, CHALLENGE_TTL).await
}

/// Takes (once) the ceremony stashed under `key`, if it is still counting
/// by the engine's clock (the store forgets it by its own clock too).
pub(crate) async fn take_ceremony<C: Ceremony>(
    core: &Core,
    key: &str,
) -> Result<Option<C>, AuthError> {
    let found: Option<C> = take(core, C::PURPOSE, key).await?;
    Ok(found.filter(|c| core.now_ms() < c.expires_at_ms()))
}

/// Reads a credential the client sent (`field` names it in the error).
pub(crate) fn parse_credential<T: DeserializeOwned>(
    value: serde_json::Value,
    field: &'static str,
) -> Result<T, AuthError> {
    serde_json::from_value(value).map_err(|e| {
        AuthError::InvalidRequest(vec![FieldError::new(
            field,
            format!("is not a WebAuthn public key credential: {e}"),
        )])
    })
}

/// Seals `passkey` for `user`.
pub(crate) fn seal(core: &Core, user: UserId, passkey: &Passkey) -> Result<Vec<u8>, AuthError> {
    let plain = zeroize::Zeroizing::new(
        serde_json::to_vec(passkey)
            .map_err(|e| AuthError::Internal(format!("encoding a passkey: {e}")))?,
    );
    core.mailer
        .keys
        .seal(&plain, &sealing_owner(&user))
        .map_err(|e| AuthError::Internal(format!("sealing a passkey: {e}")))
}

/// Opens the credential of `stored`, one of `user`'s passkeys.
pub(crate) fn open(
    core: &Core,
    user: UserId,
    stored: &StoredPasskey,
) -> Result<Passkey, AuthError> {
    let plain = core
        .mailer
        .keys
        .open(&stored.sealed, &sealing_owner(&user))
        .map_err(|e| AuthError::Internal(format!("opening a passkey: {e}")))?;
    serde_json::from_slice(&plain)
        .map_err(|e| AuthError::Internal(format!("decoding a passkey: {e}")))
}

/// The sign counter `passkey` last showed.
fn counter(passkey: &Passkey) -> u64 {
    serde_json::to_value(passkey)
        .ok()
        .and_then(|v| v["cred"]["counter"].as_u64())
        .unwrap_or(0)
}

/// Whether the authenticator says `passkey` is backed up (synced).
pub(crate) fn backed_up(passkey: &Passkey) -> bool {
    serde_json::to_value(passkey)
        .ok()
        .and_then(|v| v["cred"]["backup_state"].as_bool())
        .unwrap_or(false)
}

/// Whether the account keeps a way to sign in without the passkeys and
/// identities named for removal: a password, another identity, or another
/// passkey.
pub(crate) fn keeps_a_way_in(
    user: &UserRecord,
    without_passkey: Option<&[u8]>,
    without_identity: Option<&str>,
) -> bool {
    !user.password_hash.is_empty()
        || user
            .account
            .identities
            .iter()
            .any(|i| Some(i.provider.as_str()) != without_identity)
        || user
            .account
            .passkeys
            .iter()
            .any(|p| Some(p.id.as_slice()) != without_passkey)
}

/// What an assertion proved.
pub(crate) struct Asserted {
    /// The record with the passkey's new counter, flags and last use
    /// (written).
    pub user: UserRecord,
    /// Whether the credential may be copied off the device (RFC 8176 `swk`
    /// rather than `hwk`).
    pub backup_eligible: bool,
}

/// Checks an assertion made with `user`'s passkey `cred_id` through
/// `verify` (which is `webauthn-rs`'s), then records the use in one write
/// with `also`'s changes: the new sign counter and backup flags, the time,
/// and a notice to the owner. A
/// credential not on the account, or a refused assertion, is
/// `invalid_passkey`; a counter that went backwards is reported (log,
/// metric, notice) as a possibly cloned authenticator.
pub(crate) async fn accept(
    core: &Core,
    user: &UserRecord,
    cred_id: &[u8],
    verify: impl FnOnce(&Passkey) -> Result<AuthenticationResult, WebauthnError>,
    also: impl FnOnce(&mut UserRecord),
) -> Result<Asserted, AuthError> {
    let Some(index) = user.account.passkeys.iter().position(|p| p.id == cred_id) else {
        tracing::info!(user_id = %user.id, "passkey assertion with a credential not on the account");
        return Err(AuthError::InvalidPasskey);
    };
    let stored = &user.account.passkeys[index];
    let mut passkey = open(core, user.id, stored)?;
    // The counter is judged against the passkey as stored now: a ceremony
    // may hold an older copy (a second step started before a sign-in).
    let now_at = counter(&passkey);
    let verified = verify(&passkey).and_then(|r| {
        let shown = u64::from(r.counter());
        if (shown > 0 || now_at > 0) && shown <= now_at {
            Err(WebauthnError::CredentialPossibleCompromise)
        } else {
            Ok(r)
        }
    });
    let result = match verified {
        Ok(r) if r.user_verified() => r,
        Ok(_) => {
            tracing::info!(user_id = %user.id, "passkey assertion without user verification");
            return Err(AuthError::InvalidPasskey);
        }
        Err(WebauthnError::CredentialPossibleCompromise) => {
            metrics::counter!(m::PASSKEY_SIGNINS_TOTAL, "result" => "cloned").increment(1);
            tracing::warn!(
                user_id = %user.id,
                passkey = %crate::passkeys::id_text(&stored.id),
                "passkey sign counter went backwards: the authenticator may be cloned; refused"
            );
            let mut updated = user.clone();
            let letter = crate::mail::letters::passkey_cloned(&user.email, &stored.name);
            match notice(core, "notice_passkey_cloned", &mut updated, &letter).await {
                Ok(mail) if !mail.is_empty() => {
                    if let Err(e) = save_user(core, user, &mut updated, &mail).await {
                        tracing::warn!(user_id = %user.id, error = %e, "could not mail the cloned-passkey notice");
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(user_id = %user.id, error = %e, "could not mail the cloned-passkey notice")
                }
            }
            return Err(AuthError::InvalidPasskey);
        }
        Err(e) => {
            tracing::info!(user_id = %user.id, error = %e, "passkey assertion refused");
            return Err(AuthError::InvalidPasskey);
        }
    };
    passkey.update_credential(&result);
    let mut updated = user.clone();
    let entry = &mut updated.account.passkeys[index];
    entry.sealed = seal(core, user.id, &passkey)?;
    entry.last_used_at_ms = Some(core.now_ms());
    entry.backed_up = result.backup_state();
    also(&mut updated);
    let letter = crate::mail::letters::passkey_used(&user.email, &stored.name);
    let mail = notice(core, "notice_passkey_used", &mut updated, &letter).await?;
    save_user(core, user, &mut updated, &mail)
        .await
        .map_err(|e| crate::steps::totp::conflict_or(e, "update_user"))?;
    Ok(Asserted {
        user: updated,
        backup_eligible: result.backup_eligible(),
    })
}
