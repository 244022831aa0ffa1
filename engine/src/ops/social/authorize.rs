//! [`Authorize`]: the start of a social sign-in. Checks the client app's
//! request, stashes the flow under a fresh provider `state`, and answers
//! the provider URL and the cookie that binds the flow to this browser.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{STATE_TTL, callback_url};
use crate::core::{Core, Engine};
use crate::domain::FieldError;
use crate::error::AuthError;
use crate::model::ClientInfo;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::social::flow::{AuthorizeState, LinkGrant};
use crate::steps::social::s256;
use crate::steps::stash::{random_secret, stash, take};

/// Start a sign-in (or a link) with a provider.
pub struct Authorize {
    /// The provider's name.
    pub provider: String,
    /// Where the client app wants the answer (on the allow-list).
    pub redirect_uri: String,
    /// The client app's state, returned as given.
    pub state: String,
    /// The client app's PKCE challenge.
    pub code_challenge: String,
    /// Its method: only `S256`.
    pub code_challenge_method: String,
    /// A link token of a signed-in user (linking, not signing in).
    pub link_token: Option<Zeroizing<String>>,
    /// Caller.
    pub client: ClientInfo,
}

/// Where to send the browser, and the cookie to set.
#[derive(Debug, Clone)]
pub struct AuthorizeRedirect {
    /// The provider's authorization URL.
    pub location: String,
    /// The binding cookie's name ([`super::cookie_name`] of our state).
    pub cookie_name: String,
    /// The binding cookie's value (`HttpOnly; Secure; SameSite=Lax`).
    pub cookie: String,
    /// Its lifetime, seconds.
    pub cookie_max_age: u64,
    /// The provider posts the callback from its own site (Apple's
    /// `form_post`): the cookie must be `SameSite=None` to come with it.
    pub cross_site_post: bool,
}

impl Operation for Authorize {
    type Reply = AuthorizeRedirect;

    fn submit(self, engine: &Engine, reply: Responder<AuthorizeRedirect>) {
        let key = PartitionKey::Email(format!("oauth-authorize:{}", self.state));
        engine.core.dispatch(key, reply, move |c| run(c, self));
    }
}

fn invalid(field: &'static str, message: &str) -> AuthError {
    AuthError::InvalidRequest(vec![FieldError {
        field,
        message: message.to_owned(),
    }])
}

fn challenge_ok(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn run(core: Arc<Core>, req: Authorize) -> Reply<AuthorizeRedirect> {
    let provider = core
        .social
        .get(&req.provider)
        .cloned()
        .ok_or(AuthError::UnknownProvider)?;
    crate::steps::limits::shared_rate_limit(&core, "social", &req.client).await?;
    if !core.social.allows_redirect(&req.redirect_uri) {
        return Err(invalid("redirect_uri", "is not a registered redirect URI"));
    }
    if req.state.is_empty() || req.state.len() > 512 {
        return Err(invalid("state", "must be 1 to 512 characters"));
    }
    if req.code_challenge_method != "S256" {
        return Err(invalid("code_challenge_method", "must be S256"));
    }
    if !challenge_ok(&req.code_challenge) {
        return Err(invalid(
            "code_challenge",
            "must be the base64url SHA-256 of the code verifier (43 characters)",
        ));
    }
    // A link is bound to the challenge its signed-in client gave: a link
    // token read off a log starts nothing without that client's verifier.
    let link_user = match &req.link_token {
        None => None,
        Some(t) => {
            let grant: LinkGrant = take(&core, "social-link", t)
                .await?
                .ok_or_else(|| invalid("link_token", "is unknown, expired or used"))?;
            if grant.code_challenge != req.code_challenge {
                return Err(invalid(
                    "code_challenge",
                    "is not the one the link token was issued for",
                ));
            }
            Some(grant.user_id)
        }
    };
    let state = random_secret(&core)?;
    let nonce = random_secret(&core)?;
    let verifier = random_secret(&core)?;
    let cookie = random_secret(&core)?;
    let callback = callback_url(&core, &provider.cfg.name);
    let location = provider
        .authorize_url(&callback, &state, &nonce, &verifier, core.now_ms())
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider.cfg.name, error = %e, "provider unavailable at authorize");
            AuthError::Unavailable {
                retry_after_secs: 5,
            }
        })?;
    let flow = AuthorizeState {
        provider: provider.cfg.name.clone(),
        cookie_hash: s256(&cookie),
        pkce_verifier: verifier,
        nonce,
        redirect_uri: req.redirect_uri,
        client_state: req.state,
        code_challenge: req.code_challenge,
        link_user,
    };
    stash(&core, "social-state", &state, &flow, STATE_TTL).await?;
    Ok(AuthorizeRedirect {
        location,
        cookie_name: super::cookie_name(&state),
        cookie,
        cookie_max_age: STATE_TTL.as_secs(),
        cross_site_post: provider.posts_callback(),
    })
}
