//! [`Callback`]: the provider sends the browser back. The `state` is taken
//! (once), the browser's cookie must be the one the flow was started with,
//! the code is exchanged and the ID token checked; the client app then gets
//! a one-time code of its own (60 s), or an error, at its `redirect_uri`.

use std::sync::Arc;

use super::{CODE_TTL, callback_url, with_query};
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::social::ProviderError;
use crate::social::flow::{AuthorizeState, CodeGrant};
use crate::steps::social::s256;
use crate::steps::stash::{random_secret, stash, take};

/// The provider's answer, as the browser brought it.
pub struct Callback {
    /// The provider's name (from the path).
    pub provider: String,
    /// The authorization code.
    pub code: Option<String>,
    /// Our `state`.
    pub state: Option<String>,
    /// The provider's error code, when the user declined or it failed.
    pub error: Option<String>,
    /// The binding cookie the browser sent.
    pub cookie: Option<String>,
}

/// Where the browser goes next: the client app's `redirect_uri` with
/// `code` and `state`, or `error` and `state`.
#[derive(Debug, Clone)]
pub struct CallbackRedirect {
    /// The URL.
    pub location: String,
}

impl Operation for Callback {
    type Reply = CallbackRedirect;

    fn submit(self, engine: &Engine, reply: Responder<CallbackRedirect>) {
        let key = PartitionKey::Email(format!(
            "oauth-callback:{}",
            self.state.as_deref().unwrap_or("")
        ));
        engine.core.dispatch(key, reply, move |c| run(c, self));
    }
}

async fn run(core: Arc<Core>, req: Callback) -> Reply<CallbackRedirect> {
    let state = req.state.as_deref().unwrap_or("");
    // Unknown, used or expired: nobody to send an error to.
    let flow: AuthorizeState = take(&core, "social-state", state)
        .await?
        .ok_or(AuthError::InvalidState)?;
    if flow.provider != req.provider {
        return Err(AuthError::InvalidState);
    }
    let fail = |error: &'static str, why: &str| fail(&flow, error, why);
    // The cookie set at /authorize: a browser that did not start this flow
    // (login CSRF: an attacker's code planted in a victim's browser) lacks it.
    let cookie_ok = req.cookie.as_deref().is_some_and(|c| {
        subtle::ConstantTimeEq::ct_eq(s256(c).as_bytes(), flow.cookie_hash.as_bytes()).into()
    });
    if !cookie_ok {
        return fail("access_denied", "the browser lacks the flow's cookie");
    }
    if let Some(e) = &req.error {
        let e = if e == "access_denied" {
            "access_denied"
        } else {
            "server_error"
        };
        return fail(e, "the provider answered an error");
    }
    let Some(code) = req
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
    else {
        return fail("invalid_request", "no code");
    };
    let Some(provider) = core.social.get(&flow.provider).cloned() else {
        return fail("server_error", "the provider is no longer configured");
    };
    let callback = callback_url(&core, &flow.provider);
    let identity = match provider
        .exchange(
            &callback,
            code,
            &flow.pkce_verifier,
            &flow.nonce,
            core.now_ms(),
        )
        .await
    {
        Ok(i) => i,
        Err(ProviderError::Unavailable(why)) => return fail("temporarily_unavailable", &why),
        Err(ProviderError::Config(why)) => return fail("server_error", &why),
        Err(ProviderError::Rejected(why)) => return fail("access_denied", &why),
        Err(ProviderError::UnknownKey) => return fail("access_denied", "unknown key"),
    };
    let code = random_secret(&core)?;
    let grant = CodeGrant {
        provider: flow.provider.clone(),
        identity,
        code_challenge: flow.code_challenge.clone(),
        link_user: flow.link_user.clone(),
    };
    stash(&core, "social-code", &code, &grant, CODE_TTL).await?;
    Ok(back(&flow, "code", &code))
}

/// The client app's `redirect_uri` with `key=value` and its `state`.
fn back(flow: &AuthorizeState, key: &str, value: &str) -> CallbackRedirect {
    CallbackRedirect {
        location: with_query(
            &flow.redirect_uri,
            &[(key, value), ("state", flow.client_state.as_str())],
        ),
    }
}

/// An error sent back to the client app (RFC 6749 4.1.2.1), logged with why.
fn fail(flow: &AuthorizeState, error: &'static str, why: &str) -> Reply<CallbackRedirect> {
    tracing::warn!(provider = %flow.provider, error, why, "social sign-in refused at the callback");
    // Counted by what went wrong: a provider down is not a forged token.
    let counted = match error {
        "temporarily_unavailable" => AuthError::Unavailable {
            retry_after_secs: 1,
        },
        "server_error" => AuthError::Internal(why.to_owned()),
        _ => AuthError::InvalidIdToken,
    };
    super::count(&flow.provider, &Err(counted));
    Ok(back(flow, "error", error))
}
