//! [`RegisterStart`] and [`RegisterFinish`]: a new passkey for the bearer.
//! Starting needs a fresh proof of who is there (the current password, or a
//! passkey sign-in of the last ten minutes; an account without a password:
//! any sign-in of the last ten minutes): a stolen access token alone
//! registers nothing. Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::StoredPasskey;
use webauthn_rs::prelude::{RegisterPublicKeyCredential, Uuid};

use super::{PasskeyView, parse_name};
use crate::core::{Core, Engine};
use crate::domain::{FieldError, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::model::{Bearer, ClientInfo};
use crate::ops::Operation;
use crate::passkeys::{MAX_ID_BYTES, MAX_PER_ACCOUNT, Registration, challenge_of};
use crate::responder::{Reply, Responder};
use crate::steps::access::{authed, signed_in_recently};
use crate::steps::limits::{account_limit, shared_rate_limit};
use crate::steps::lockout::reverify_password;
use crate::steps::outbox::notice;
use crate::steps::passkeys::{backed_up, keep, parse_credential, seal, take_ceremony};
use crate::steps::record::{load_user, save_user};
use crate::steps::sessions::authorize;
use crate::steps::totp::conflict_or;
use crate::tokens::VerifiedAccess;

/// Start registering a passkey.
pub struct RegisterStart {
    /// Access token.
    pub bearer: Bearer,
    /// The current password (needed unless the session is a fresh passkey
    /// sign-in, or the account has no password).
    pub password: Option<Password>,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for RegisterStart {
    /// The browser's `PublicKeyCredentialCreationOptions`, as
    /// `{"publicKey": {...}}`.
    type Reply = serde_json::Value;

    fn submit(self, engine: &Engine, reply: Responder<serde_json::Value>) {
        let Some((slot, reply)) = engine.core.reserve_hash(reply) else {
            return;
        };
        let RegisterStart {
            bearer,
            password,
            client,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| async move {
            shared_rate_limit(&c, "passkey", &client).await?;
            start(c, a, password, slot).await
        });
    }
}

/// Whether the session signed in with a passkey.
fn by_passkey(access: &VerifiedAccess) -> bool {
    access.claims.amr.iter().any(|m| m == "hwk" || m == "swk")
}

async fn start(
    core: Arc<Core>,
    access: VerifiedAccess,
    password: Option<Password>,
    slot: HashSlot,
) -> Reply<serde_json::Value> {
    authorize(&core, &access).await?;
    account_limit(
        &core,
        "passkey",
        access.user_id,
        core.cfg.account_rate_limit,
    )
    .await?;
    let user = load_user(&core, access.user_id).await?;
    // Whoever registered an address they do not own cannot attach their
    // own authenticator to it before the owner proves the mailbox (the
    // owner's password reset would not remove it).
    if !user.email_verified {
        return Err(AuthError::EmailNotVerified);
    }
    match password {
        Some(p) => reverify_password(&core, &user, p, access.session_id, slot).await?,
        None if user.password_hash.is_empty() => {
            if !signed_in_recently(&core, &access) {
                return Err(AuthError::ReauthenticationRequired);
            }
        }
        None if by_passkey(&access) && signed_in_recently(&core, &access) => {}
        None => {
            return Err(AuthError::InvalidRequest(vec![FieldError::new(
                "password",
                "is required: the account's current password (or sign in with a passkey first)",
            )]));
        }
    }
    if user.account.passkeys.len() >= MAX_PER_ACCOUNT {
        return Err(AuthError::InvalidRequest(vec![FieldError::new(
            "body",
            "the account has the most passkeys it may have (20); delete one first",
        )]));
    }
    let exclude = user
        .account
        .passkeys
        .iter()
        .map(|p| p.id.clone())
        .collect::<Vec<_>>();
    let display = user.name.clone().unwrap_or_else(|| user.email.clone());
    let (options, state) = core
        .webauthn
        .start_passkey_registration(
            Uuid::from_bytes(user.id.0),
            &user.email,
            &display,
            Some(exclude),
        )
        .map_err(|e| AuthError::Internal(format!("starting a passkey registration: {e}")))?;
    let mut options = serde_json::to_value(&options)
        .map_err(|e| AuthError::Internal(format!("encoding creation options: {e}")))?;
    // A discoverable credential where the authenticator can keep one, so
    // that it signs in with no email typed; not required (security keys
    // with few slots still work as a second factor).
    if let Some(sel) = options["publicKey"]["authenticatorSelection"].as_object_mut() {
        sel.insert("residentKey".into(), "preferred".into());
        sel.insert("requireResidentKey".into(), false.into());
    }
    let challenge = options["publicKey"]["challenge"]
        .as_str()
        .ok_or_else(|| AuthError::Internal("creation options without a challenge".into()))?
        .to_owned();
    let ceremony = Registration {
        user_id: user.id.to_uuid_string(),
        session_id: access.session_id.to_b64(),
        state,
    };
    keep(&core, &challenge, &ceremony).await?;
    Ok(options)
}

/// Finish registering a passkey.
pub struct RegisterFinish {
    /// Access token.
    pub bearer: Bearer,
    /// The owner's name for it (default "Passkey").
    pub name: Option<String>,
    /// The browser's `PublicKeyCredential` (attestation), as JSON.
    pub credential: serde_json::Value,
}

impl Operation for RegisterFinish {
    type Reply = PasskeyView;

    fn submit(self, engine: &Engine, reply: Responder<PasskeyView>) {
        let RegisterFinish {
            bearer,
            name,
            credential,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| {
            finish(c, a, name, credential)
        });
    }
}

async fn finish(
    core: Arc<Core>,
    access: VerifiedAccess,
    name: Option<String>,
    credential: serde_json::Value,
) -> Reply<PasskeyView> {
    authorize(&core, &access).await?;
    let name = parse_name(name.as_deref().unwrap_or("Passkey"))?;
    let cred: RegisterPublicKeyCredential = parse_credential(credential, "credential")?;
    let challenge = challenge_of(cred.response.client_data_json.as_ref())
        .ok_or(AuthError::InvalidPasskeyRegistration)?;
    // Taken whatever follows: a challenge answers once.
    let ceremony: Registration = take_ceremony(&core, &challenge)
        .await?
        .ok_or(AuthError::InvalidPasskeyRegistration)?;
    if ceremony.user_id != access.user_id.to_uuid_string()
        || ceremony.session_id != access.session_id.to_b64()
    {
        tracing::warn!(user_id = %access.user_id, "passkey registration finished by another session than started it");
        return Err(AuthError::InvalidPasskeyRegistration);
    }
    let passkey = core
        .webauthn
        .finish_passkey_registration(&cred, &ceremony.state)
        .map_err(|e| {
            tracing::info!(user_id = %access.user_id, error = %e, "passkey registration refused");
            AuthError::InvalidPasskeyRegistration
        })?;
    let id: Vec<u8> = passkey.cred_id().to_vec();
    if id.len() > MAX_ID_BYTES {
        return Err(AuthError::InvalidPasskeyRegistration);
    }
    for _ in 0..3 {
        let current = load_user(&core, access.user_id).await?;
        if !current.email_verified {
            return Err(AuthError::EmailNotVerified);
        }
        if current.account.passkeys.iter().any(|p| p.id == id) {
            return Err(AuthError::InvalidPasskeyRegistration);
        }
        if current.account.passkeys.len() >= MAX_PER_ACCOUNT {
            return Err(AuthError::InvalidRequest(vec![FieldError::new(
                "body",
                "the account has the most passkeys it may have (20); delete one first",
            )]));
        }
        let stored = StoredPasskey {
            id: id.clone(),
            name: name.clone(),
            created_at_ms: core.now_ms(),
            last_used_at_ms: None,
            backed_up: backed_up(&passkey),
            sealed: seal(&core, current.id, &passkey)?,
        };
        let view = PasskeyView::from(&stored);
        let mut updated = current.clone();
        updated.account.passkeys.push(stored);
        let letter = crate::mail::letters::passkey_added(&current.email, &name);
        let mail = notice(&core, "notice_passkey_added", &mut updated, &letter).await?;
        match save_user(&core, &current, &mut updated, &mail).await {
            Ok(_) => {
                tracing::info!(user_id = %current.id, passkey = %view.id, "passkey registered");
                return Ok(view);
            }
            Err(portcullis_storage::StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(conflict_or(e, "update_user")),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
