//! Social login: the redirect to a provider and its callback, the client's
//! code exchange, native apps' ID tokens, and the account's identities.
//!
//! | operation | partition |
//! | --- | --- |
//! | `Authorize`, `Callback` | one of their own (provider calls only) |
//! | `SocialToken`, `IdTokenSignIn` | their own, then the identity's email (account resolution), then the user |
//! | `ListIdentities`, `Unlink`, `StartLink` | user |

mod authorize;
mod callback;
mod id_token;
mod identities;
mod token;

use std::sync::Arc;

pub use authorize::{Authorize, AuthorizeRedirect};
pub use callback::{Callback, CallbackRedirect};
pub use id_token::IdTokenSignIn;
pub use identities::{IdentityView, LinkToken, ListIdentities, StartLink, Unlink};
pub use token::SocialToken;

use portcullis_storage::UserRecord;

use crate::core::Core;
use crate::error::AuthError;
use crate::metrics as m;
use crate::model::{ClientInfo, MfaRequired, TokenGrant, UserView};
use crate::responder::Reply;
use crate::shard::PartitionKey;
use crate::social::Identity;
use crate::steps::lockout::{account_key, clear_lockout, pair_key, refuse_if_locked};
use crate::steps::signin::{issue_device_token, open_session};

/// A social sign-in's answer.
#[derive(Debug, Clone)]
pub enum SocialReply {
    /// Signed in.
    Granted {
        /// The account.
        user: Arc<UserView>,
        /// Its new session.
        grant: TokenGrant,
        /// Whether the account was created by this sign-in.
        created: bool,
    },
    /// The account has TOTP on: the second step follows, as after a password.
    MfaRequired(MfaRequired),
}

/// Lifetime of the one-time code the callback hands the client app.
pub(crate) const CODE_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Lifetime of a provider round trip (authorize to callback).
pub(crate) const STATE_TTL: std::time::Duration = std::time::Duration::from_secs(600);
/// Lifetime of a link token.
pub(crate) const LINK_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Counts a social sign-in by provider and outcome.
pub(crate) fn count(provider: &str, result: &Reply<SocialReply>) {
    // Every value is one of `metrics::SOCIAL_RESULTS`.
    let outcome = match result {
        Ok(SocialReply::Granted { created: true, .. }) => "created",
        Ok(SocialReply::Granted { .. }) => "ok",
        Ok(SocialReply::MfaRequired(_)) => "mfa_required",
        Err(AuthError::AccountExists) => "account_exists",
        Err(AuthError::InvalidIdToken | AuthError::InvalidGrant) => "invalid",
        Err(AuthError::TooManyAttempts { .. }) => "locked",
        Err(AuthError::Unavailable { .. }) => "unavailable",
        Err(_) => "error",
    };
    metrics::counter!(m::SOCIAL_SIGNINS_TOTAL, "provider" => provider.to_owned(), "result" => outcome)
        .increment(1);
}

/// Resolves the account of `identity` (in its email's partition) and signs
/// it in like a password login: the account's lock refuses it, TOTP still
/// asks for the second factor, the session's `amr` is `fed`, and a device
/// token comes with it.
pub(crate) async fn sign_in(
    core: &Arc<Core>,
    provider: String,
    identity: Identity,
    link_user: Option<portcullis_storage::UserId>,
    client: ClientInfo,
) -> Reply<SocialReply> {
    let partition = match &identity.email {
        Some(e) => PartitionKey::Email(e.to_ascii_lowercase()),
        None => PartitionKey::Email(format!("identity:{provider}:{}", identity.subject)),
    };
    let c = core.clone();
    let p = provider.clone();
    let resolved = core
        .call_in(partition, async move {
            crate::steps::social::resolve(&c, &p, &identity, link_user).await
        })
        .await;
    let result = match resolved {
        Ok(Ok((user, created))) => finish(core, user, created, client).await,
        Ok(Err(e)) | Err(e) => Err(e),
    };
    count(&provider, &result);
    result
}

async fn finish(
    core: &Arc<Core>,
    user: UserRecord,
    created: bool,
    client: ClientInfo,
) -> Reply<SocialReply> {
    refuse_if_locked(core, &account_key(&user.email)).await?;
    let c = core.clone();
    core.call_in(PartitionKey::User(user.id), async move {
        let epoch = user.account.credentials_epoch;
        if user.mfa_enabled {
            return crate::steps::totp::begin(
                &c,
                user.id,
                epoch,
                crate::steps::totp::FirstFactor::Federated,
            )
            .await
            .map(SocialReply::MfaRequired);
        }
        let mut grant = open_session(&c, user.id, &client, &["fed"], Some(epoch)).await?;
        grant.device_token = Some(issue_device_token(
            &c,
            user.id,
            user.account.device_epoch,
            None,
        )?);
        clear_lockout(&c, &pair_key(&user.email, &client)).await?;
        tracing::info!(user_id = %user.id, created, "signed in with a provider");
        Ok(SocialReply::Granted {
            user: c.read.put_user(&user),
            grant,
            created,
        })
    })
    .await?
}

/// The name of the cookie that binds the provider round trip of `state`
/// to its browser: one per flow (two tabs do not overwrite each other's),
/// `__Host-` so that no sibling domain can set it.
pub fn cookie_name(state: &str) -> String {
    let digest = crate::steps::social::s256(state);
    format!("__Host-portcullis-oauth-{}", &digest[..16])
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `uri` with `params` added to its query.
pub(crate) fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
        sep = '&';
    }
    out
}

/// Where a provider sends the browser back: `<public url>/v1/oauth/<name>/callback`.
pub(crate) fn callback_url(core: &Core, provider: &str) -> String {
    let base = core
        .social
        .public_url
        .clone()
        .unwrap_or_else(|| core.cfg.issuer.trim_end_matches('/').to_owned());
    format!("{base}/v1/oauth/{provider}/callback")
}
