//! Signing in with a passkey: [`PasskeyStart`] answers request options for
//! a discoverable credential (no email typed) and a `challenge_id`;
//! [`PasskeyFinish`] checks the assertion and opens a session. A passkey
//! sign-in verifies the user on the device, so it satisfies the second
//! factor on its own. [`MfaPasskeyStart`] answers options for a passkey as
//! the second step of a password or provider login (finished by
//! [`LoginMfa`](super::LoginMfa)).

use std::sync::Arc;

use portcullis_storage::UserId;
use webauthn_rs::prelude::PublicKeyCredential;
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::metrics as m;
use crate::model::{ClientInfo, TokenGrant};
use crate::ops::Operation;
use crate::passkeys::{SecondFactor, SignIn, amr};
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::access::with_onetime;
use crate::steps::lockout::{mfa_key, refuse_if_locked};
use crate::steps::passkeys::{Refusal, accept, keep, parse_credential, take_ceremony};
use crate::steps::record::load_user;
use crate::steps::signin::{issue_device_token, open_session};
use crate::steps::stash::random_secret;
use crate::tokens::onetime::{self, Purpose};

/// Request options for a passkey sign-in, and the id its finish names.
#[derive(Debug, Clone)]
pub struct PasskeyOptions {
    /// `{"publicKey": PublicKeyCredentialRequestOptions}`.
    pub options: serde_json::Value,
    /// The ceremony's id (only for a sign-in without a first step).
    pub challenge_id: Option<String>,
}

/// Start a passkey sign-in.
pub struct PasskeyStart {
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for PasskeyStart {
    type Reply = PasskeyOptions;

    fn submit(self, engine: &Engine, reply: Responder<PasskeyOptions>) {
        let id = match random_secret(&engine.core) {
            Ok(id) => id,
            Err(e) => return reply.send(Err(e)),
        };
        let key = PartitionKey::Email(format!("passkey-start:{id}"));
        engine
            .core
            .dispatch(key, reply, move |c| start(c, id, self.client));
    }
}

/// Options without the conditional mediation `webauthn-rs` asks for: the
/// page decides whether it offers passkeys in autofill or on a button.
fn request_options(
    rcr: &webauthn_rs::prelude::RequestChallengeResponse,
) -> Result<serde_json::Value, AuthError> {
    let mut v = serde_json::to_value(rcr)
        .map_err(|e| AuthError::Internal(format!("encoding request options: {e}")))?;
    if let Some(o) = v.as_object_mut() {
        o.remove("mediation");
    }
    Ok(v)
}

async fn start(core: Arc<Core>, id: String, client: ClientInfo) -> Reply<PasskeyOptions> {
    crate::steps::limits::shared_rate_limit(&core, "passkey", &client).await?;
    let (rcr, state) = core
        .webauthn
        .start_discoverable_authentication()
        .map_err(|e| AuthError::Internal(format!("starting a passkey sign-in: {e}")))?;
    let ceremony = SignIn { state };
    keep(&core, &id, &ceremony).await?;
    Ok(PasskeyOptions {
        options: request_options(&rcr)?,
        challenge_id: Some(id),
    })
}

/// Finish a passkey sign-in.
pub struct PasskeyFinish {
    /// The `challenge_id` of the start.
    pub challenge_id: Zeroizing<String>,
    /// The browser's `PublicKeyCredential` (assertion), as JSON.
    pub credential: serde_json::Value,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for PasskeyFinish {
    type Reply = TokenGrant;

    fn submit(self, engine: &Engine, reply: Responder<TokenGrant>) {
        let cred: PublicKeyCredential = match parse_credential(self.credential, "credential") {
            Ok(c) => c,
            Err(e) => return reply.send(Err(e)),
        };
        // The user handle names the account (it is the user id); the
        // signature, checked with that account's key, proves it.
        let user = match engine
            .core
            .webauthn
            .identify_discoverable_authentication(&cred)
        {
            Ok((uuid, _)) => UserId(*uuid.as_bytes()),
            Err(_) => {
                Refusal::Invalid.count();
                return reply.send(Err(AuthError::InvalidPasskey));
            }
        };
        let (challenge_id, client) = (self.challenge_id, self.client);
        engine
            .core
            .dispatch(PartitionKey::User(user), reply, move |c| async move {
                match finish(&c, user, &challenge_id, cred, client).await {
                    Ok(grant) => {
                        metrics::counter!(m::PASSKEY_SIGNINS_TOTAL, "result" => "ok").increment(1);
                        Ok(grant)
                    }
                    Err(refusal) => {
                        refusal.count();
                        Err(refusal.into_error(AuthError::InvalidPasskey))
                    }
                }
            });
    }
}

async fn finish(
    core: &Arc<Core>,
    user_id: UserId,
    challenge_id: &str,
    cred: PublicKeyCredential,
    client: ClientInfo,
) -> Result<TokenGrant, Refusal> {
    crate::steps::limits::shared_rate_limit(core, "passkey", &client).await?;
    // Taken first: whatever follows, the challenge answered once.
    let ceremony: SignIn = take_ceremony(core, challenge_id)
        .await?
        .ok_or(Refusal::Invalid)?;
    let user = match core.user_op("get_user", core.users.get_user(user_id)).await {
        Ok(Some(u)) => u,
        Ok(None) => return Err(Refusal::Invalid),
        Err(e) => return Err(AuthError::from_store("get_user", e).into()),
    };
    let wa = &core.webauthn;
    let asserted = accept(
        core,
        &user,
        cred.get_credential_id(),
        |passkey| wa.finish_discoverable_authentication_v2(&cred, ceremony.state, passkey),
        |_| {},
    )
    .await?;
    let user = asserted.user;
    let methods = amr(asserted.backup_eligible);
    let epoch = user.account.credentials_epoch;
    let mut grant = open_session(core, user.id, &client, &methods, Some(epoch)).await?;
    grant.device_token = Some(issue_device_token(
        core,
        user.id,
        user.account.device_epoch,
        None,
    )?);
    tracing::info!(user_id = %user.id, "signed in with a passkey");
    Ok(grant)
}

/// Request options for a passkey as the second step of a login.
pub struct MfaPasskeyStart {
    /// The `mfa_token` of the login's first step.
    pub mfa_token: Zeroizing<String>,
}

impl Operation for MfaPasskeyStart {
    type Reply = PasskeyOptions;

    fn submit(self, engine: &Engine, reply: Responder<PasskeyOptions>) {
        with_onetime(
            &engine.core,
            Purpose::MfaLogin,
            &self.mfa_token,
            AuthError::InvalidMfa,
            reply,
            mfa_start,
        );
    }
}

/// Whether `token` is the account's pending `mfa_token` (after a password
/// or a provider).
pub(crate) fn pending_first_factor(
    token: &onetime::Presented,
    user: &portcullis_storage::UserRecord,
    now: u64,
) -> Option<&'static str> {
    let pending = user.account.mfa_login.as_ref();
    if token.matches(pending, now) {
        Some("pwd")
    } else if token
        .as_purpose(Purpose::MfaLoginFederated)
        .matches(pending, now)
    {
        Some("fed")
    } else {
        None
    }
}

async fn mfa_start(core: Arc<Core>, token: onetime::Presented) -> Reply<PasskeyOptions> {
    let user = load_user(&core, token.user_id)
        .await
        .map_err(|_| AuthError::InvalidMfa)?;
    refuse_if_locked(&core, &mfa_key(user.id)).await?;
    if pending_first_factor(&token, &user, core.now_ms()).is_none() {
        return Err(AuthError::InvalidMfa);
    }
    // Each start keeps a ceremony (the account's credentials) for five
    // minutes: bounded per account, across pods.
    crate::steps::limits::account_limit(&core, "passkey_mfa", user.id, core.cfg.account_rate_limit)
        .await?;
    let mut passkeys = Vec::with_capacity(user.account.passkeys.len());
    for p in &user.account.passkeys {
        passkeys.push(crate::steps::passkeys::open(&core, user.id, p)?);
    }
    if passkeys.is_empty() {
        return Err(AuthError::InvalidRequest(vec![
            crate::domain::FieldError::new("mfa_token", "the account has no passkey"),
        ]));
    }
    let (rcr, state) = core
        .webauthn
        .start_passkey_authentication(&passkeys)
        .map_err(|e| AuthError::Internal(format!("starting a passkey second step: {e}")))?;
    let options = request_options(&rcr)?;
    let challenge = options["publicKey"]["challenge"]
        .as_str()
        .ok_or_else(|| AuthError::Internal("request options without a challenge".into()))?
        .to_owned();
    let ceremony = SecondFactor {
        user_id: user.id.to_uuid_string(),
        state,
    };
    keep(&core, &challenge, &ceremony).await?;
    Ok(PasskeyOptions {
        options,
        challenge_id: None,
    })
}
