//! Social login: Portcullis as an OpenID Connect / OAuth 2.0 client of the
//! configured providers. [`config`] reads the providers file; [`oidc`]
//! speaks to OpenID providers; [`flow`] holds what a sign-in carries from
//! one request to the next (sealed by the engine, stashed in the token
//! store, so any pod finishes what another started).

pub mod apple;
pub mod config;
pub mod flow;
pub mod github;
pub mod http;
pub mod oidc;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use config::{Kind, ProviderConfig, SocialConfig};

/// What a provider says about the person who signed in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// The provider's stable subject id.
    pub subject: String,
    /// The email the provider gives, if any.
    pub email: Option<String>,
    /// Whether the provider asserts that email verified.
    pub email_verified: bool,
    /// Display name.
    pub name: Option<String>,
    /// When the ID token it came from expires (Unix ms; none for OAuth-only
    /// providers): how long a used token must be remembered.
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

/// Why a provider call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderError {
    /// The provider is down, slow or answered nonsense: try again later.
    Unavailable(String),
    /// What the provider (or the client) presented does not verify.
    Rejected(String),
    /// The token names a key the cached JWKS lacks (fetch them again).
    UnknownKey,
    /// Our configuration cannot work with this provider.
    Config(String),
}

impl std::fmt::Display for ProviderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProviderError::Unavailable(m) => write!(f, "provider unavailable: {m}"),
            ProviderError::Rejected(m) => write!(f, "rejected: {m}"),
            ProviderError::UnknownKey => f.write_str("unknown signing key"),
            ProviderError::Config(m) => write!(f, "configuration: {m}"),
        }
    }
}

/// A provider call's future: boxed and `Send`, so operations can hold it
/// across their own awaits on any runtime thread.
pub type ProviderFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// How a provider is spoken to.
enum Speaker {
    /// OpenID Connect (generic, Google, GitLab, Microsoft, Apple).
    Oidc(Box<oidc::Oidc>),
    /// GitHub's OAuth 2.0 and REST API.
    GitHub(Box<github::GitHub>),
}

/// One configured provider, ready to use.
pub struct Provider {
    /// Its configuration.
    pub cfg: ProviderConfig,
    speaker: Speaker,
}

impl Provider {
    /// Whether its callback comes as a cross-site form post (Apple's
    /// `form_post`): the flow's cookie must then be `SameSite=None` to
    /// come with it.
    pub fn posts_callback(&self) -> bool {
        matches!(self.cfg.kind, Kind::Apple { .. })
    }

    /// The provider's authorization URL for one sign-in.
    pub fn authorize_url<'a>(
        &'a self,
        callback: &'a str,
        state: &'a str,
        nonce: &'a str,
        pkce_verifier: &'a str,
        now_ms: u64,
    ) -> ProviderFuture<'a, String> {
        Box::pin(async move {
            match &self.speaker {
                Speaker::Oidc(o) => {
                    o.authorize_url(callback, state, nonce, pkce_verifier, now_ms)
                        .await
                }
                Speaker::GitHub(g) => g.authorize_url(callback, state, pkce_verifier),
            }
        })
    }

    /// Exchanges a code for the identity it proves.
    pub fn exchange<'a>(
        &'a self,
        callback: &'a str,
        code: &'a str,
        pkce_verifier: &'a str,
        nonce: &'a str,
        now_ms: u64,
    ) -> ProviderFuture<'a, Identity> {
        Box::pin(async move {
            match &self.speaker {
                Speaker::Oidc(o) => {
                    let secret = self.client_secret(now_ms)?;
                    o.exchange(callback, code, pkce_verifier, nonce, secret, now_ms)
                        .await
                }
                Speaker::GitHub(g) => g.exchange(callback, code, pkce_verifier).await,
            }
        })
    }

    /// The client secret for a token request: configured, or (Apple) a
    /// short-lived ES256 JWT signed with the team's key.
    fn client_secret(&self, now_ms: u64) -> Result<Option<String>, ProviderError> {
        match &self.cfg.kind {
            Kind::Apple {
                team_id,
                key_id,
                private_key,
            } => apple::client_secret(team_id, key_id, private_key, &self.cfg.client_id, now_ms)
                .map(Some)
                .map_err(ProviderError::Config),
            _ => Ok(self.cfg.client_secret.as_ref().map(|s| s.to_string())),
        }
    }

    /// Checks an ID token a native app obtained itself (its `aud` our
    /// client id or one of the extra ones). Apple's SDK puts the SHA-256
    /// (hex) of the app's nonce in the token: both forms are accepted
    /// there.
    pub fn check_id_token<'a>(
        &'a self,
        token: &'a str,
        nonce: &'a str,
        now_ms: u64,
    ) -> ProviderFuture<'a, Identity> {
        Box::pin(async move {
            match &self.speaker {
                Speaker::Oidc(o) => {
                    let extra = &self.cfg.extra_client_ids;
                    let first = o.check(token, Some(nonce), extra, now_ms).await;
                    match first {
                        Err(ProviderError::Rejected(_)) if self.posts_callback() => {
                            let hashed = apple::hashed_nonce(nonce);
                            o.check(token, Some(&hashed), extra, now_ms).await
                        }
                        other => other,
                    }
                }
                Speaker::GitHub(_) => Err(ProviderError::Rejected(format!(
                    "{} issues no ID tokens",
                    self.cfg.name
                ))),
            }
        })
    }
}

/// Every configured provider, by name.
#[derive(Clone, Default)]
pub struct Providers {
    by_name: HashMap<String, Arc<Provider>>,
    /// Allowed client `redirect_uri`s.
    pub redirect_uris: Arc<Vec<String>>,
    /// Public base URL of Portcullis (the callback's base).
    pub public_url: Option<String>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("names", &self.by_name.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// The providers of `cfg`, each calling out with a `timeout`.
    pub fn new(cfg: &SocialConfig, timeout: Duration) -> Result<Providers, String> {
        let http = http::client(timeout)?;
        let mut by_name = HashMap::new();
        for p in &cfg.providers {
            let speaker = match &p.kind {
                Kind::Oidc | Kind::Microsoft { .. } => {
                    Speaker::Oidc(Box::new(oidc::Oidc::new(p.clone(), http.clone())))
                }
                Kind::Apple {
                    team_id,
                    key_id,
                    private_key,
                } => {
                    // A key that cannot sign fails the start, not a sign-in.
                    apple::client_secret(team_id, key_id, private_key, &p.client_id, 0)
                        .map_err(|e| format!("provider {}: {e}", p.name))?;
                    Speaker::Oidc(Box::new(oidc::Oidc::new(p.clone(), http.clone())))
                }
                Kind::GitHub {
                    api_url,
                    authorize_url,
                    token_url,
                } => Speaker::GitHub(Box::new(github::GitHub::new(
                    p.clone(),
                    http.clone(),
                    api_url.clone(),
                    authorize_url.clone(),
                    token_url.clone(),
                ))),
            };
            by_name.insert(
                p.name.clone(),
                Arc::new(Provider {
                    cfg: p.clone(),
                    speaker,
                }),
            );
        }
        Ok(Providers {
            by_name,
            redirect_uris: Arc::new(cfg.redirect_uris.clone()),
            public_url: cfg.public_url.clone(),
        })
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Provider>> {
        self.by_name.get(name)
    }

    /// Their names, sorted (for metrics and the start-up log).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.by_name.keys().cloned().collect();
        v.sort();
        v
    }

    /// Whether a client may be sent back to `uri` (exact match).
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == uri)
    }
}
