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
use crate::steps::stash::{stash, take};

/// A ceremony kept between its start and its finish, under its own
/// purpose in the stash.
pub(crate) trait Ceremony: Serialize + DeserializeOwned {
    /// The token-store purpose it is stashed under.
    const PURPOSE: &'static str;
}

impl Ceremony for crate::passkeys::Registration {
    const PURPOSE: &'static str = "passkey-register";
}

impl Ceremony for crate::passkeys::SignIn {
    const PURPOSE: &'static str = "passkey-signin";
}

impl Ceremony for crate::passkeys::SecondFactor {
    const PURPOSE: &'static str = "passkey-mfa";
}

/// Stashes `ceremony` under `key` (its challenge, or a challenge id) for
/// [`CHALLENGE_TTL`].
pub(crate) async fn keep<C: Ceremony>(
    core: &Core,
    key: &str,
    ceremony: &C,
) -> Result<(), AuthError> {
    stash(core, C::PURPOSE, key, ceremony, CHALLENGE_TTL).await
}

/// Takes (once) the ceremony stashed under `key`, if it is still counting.
pub(crate) async fn take_ceremony<C: Ceremony>(
    core: &Core,
    key: &str,
) -> Result<Option<C>, AuthError> {
    take(core, C::PURPOSE, key).await
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

/// The parts of a serialized `Passkey` its type does not expose.
#[derive(serde::Deserialize, Default)]
struct Serialized {
    cred: CredState,
}

#[derive(serde::Deserialize, Default)]
struct CredState {
    counter: u32,
    backup_state: bool,
}

fn decode(plain: &[u8]) -> Result<(Passkey, CredState), AuthError> {
    let bad = |e: serde_json::Error| AuthError::Internal(format!("decoding a passkey: {e}"));
    let passkey = serde_json::from_slice(plain).map_err(bad)?;
    let Serialized { cred } = serde_json::from_slice(plain).map_err(bad)?;
    Ok((passkey, cred))
}

fn open_state(
    core: &Core,
    user: UserId,
    stored: &StoredPasskey,
) -> Result<(Passkey, CredState), AuthError> {
    let plain = core
        .mailer
        .keys
        .open(&stored.sealed, &sealing_owner(&user))
        .map_err(|e| AuthError::Internal(format!("opening a passkey: {e}")))?;
    decode(&plain)
}

/// Opens the credential of `stored`, one of `user`'s passkeys.
pub(crate) fn open(
    core: &Core,
    user: UserId,
    stored: &StoredPasskey,
) -> Result<Passkey, AuthError> {
    open_state(core, user, stored).map(|(p, _)| p)
}

/// Whether the authenticator says `passkey` is backed up (synced).
pub(crate) fn backed_up(passkey: &Passkey) -> bool {
    serde_json::to_vec(passkey)
        .ok()
        .and_then(|v| serde_json::from_slice::<Serialized>(&v).ok())
        .unwrap_or_default()
        .cred
        .backup_state
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

/// Why a passkey sign-in or second step failed. The client is told
/// `invalid_passkey` (or `invalid_mfa`) for both refusals; the metric
/// `portcullis_engine_passkey_signins_total` counts each once, under its
/// own result.
pub(crate) enum Refusal {
    /// Unknown, used or expired challenge; a credential not on the account;
    /// a refused assertion.
    Invalid,
    /// A sign counter that did not grow: a possibly copied authenticator.
    Cloned,
    /// Not a refusal: a store or other failure.
    Failed(AuthError),
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Refusal {
        Refusal::Failed(e)
    }
}

impl Refusal {
    /// Counts it (`invalid`, `cloned` or `error`).
    pub(crate) fn count(&self) {
        let result = match self {
            Refusal::Invalid => "invalid",
            Refusal::Cloned => "cloned",
            Refusal::Failed(_) => "error",
        };
        metrics::counter!(m::PASSKEY_SIGNINS_TOTAL, "result" => result).increment(1);
    }

    /// The error the client is given: `refused` for a refusal.
    pub(crate) fn into_error(self, refused: AuthError) -> AuthError {
        match self {
            Refusal::Invalid | Refusal::Cloned => refused,
            Refusal::Failed(e) => e,
        }
    }
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
/// and a notice to the owner. A credential not on the account, or a
/// refused assertion, is [`Refusal::Invalid`]; a counter that went
/// backwards is [`Refusal::Cloned`], logged and mailed to the owner.
pub(crate) async fn accept(
    core: &Core,
    user: &UserRecord,
    cred_id: &[u8],
    verify: impl FnOnce(&Passkey) -> Result<AuthenticationResult, WebauthnError>,
    also: impl FnOnce(&mut UserRecord),
) -> Result<Asserted, Refusal> {
    let Some(index) = user.account.passkeys.iter().position(|p| p.id == cred_id) else {
        tracing::info!(user_id = %user.id, "passkey assertion with a credential not on the account");
        return Err(Refusal::Invalid);
    };
    let stored = &user.account.passkeys[index];
    let (mut passkey, state) = open_state(core, user.id, stored)?;
    // The counter is judged against the passkey as stored now: a ceremony
    // may hold an older copy (a second step started before a sign-in).
    let now_at = state.counter;
    let verified = verify(&passkey).and_then(|r| {
        let shown = r.counter();
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
            return Err(Refusal::Invalid);
        }
        Err(WebauthnError::CredentialPossibleCompromise) => {
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
            return Err(Refusal::Cloned);
        }
        Err(e) => {
            tracing::info!(user_id = %user.id, error = %e, "passkey assertion refused");
            return Err(Refusal::Invalid);
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
