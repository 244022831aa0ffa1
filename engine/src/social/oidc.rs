//! An OpenID Connect provider at run time: its discovery document and keys
//! (cached; the keys fetched again when a token names one not in them, at
//! most once per [`JWKS_REFETCH`]), the authorization URL, the code
//! exchange, and the ID-token check. `openidconnect` does the protocol;
//! this module pins what it accepts.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreIdToken, CoreIdTokenVerifier,
    CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse,
};

use super::config::{Kind, ProviderConfig};
use super::http;
use super::{Identity, ProviderError};
use crate::clock::ms;

/// How long a discovery document is used before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The keys are fetched again for an unknown `kid` at most this often, so
/// forged tokens cannot make Portcullis hammer the provider.
const JWKS_REFETCH: Duration = Duration::from_secs(10);
/// Clock skew allowed on `iat` (a token issued in the future).
const IAT_SKEW_SECS: i64 = 60;

/// Only asymmetric signatures: an HMAC "signed" with the provider's public
/// key, or `none`, never verifies.
const ALGS: [CoreJwsSigningAlgorithm; 9] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

struct Cached {
    meta: CoreProviderMetadata,
    /// When the document was fetched (engine clock, Unix ms).
    fetched_ms: u64,
    /// When the keys were last fetched.
    jwks_ms: u64,
}

#[derive(Default)]
struct State {
    cached: Option<Cached>,
    /// When discovery last failed: for [`FAILURE_BACKOFF`] after, callers
    /// are told at once rather than each waiting out the timeout again.
    failed_ms: Option<u64>,
}

/// After a failed discovery, how long requests are answered 503 at once.
const FAILURE_BACKOFF: Duration = Duration::from_secs(5);

/// An OpenID provider.
pub struct Oidc {
    cfg: ProviderConfig,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
}

impl Oidc {
    pub(super) fn new(cfg: ProviderConfig, http: reqwest::Client) -> Oidc {
        Oidc {
            cfg,
            http,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    fn issuer(&self) -> Result<IssuerUrl, ProviderError> {
        IssuerUrl::new(self.cfg.issuer.clone().unwrap_or_default())
            .map_err(|e| ProviderError::Config(format!("issuer: {e}")))
    }

    fn multi_tenant(&self) -> bool {
        matches!(&self.cfg.kind, Kind::Microsoft { tenant } if is_multi_tenant(tenant))
    }

    /// Fetches the discovery document and the keys. Microsoft's
    /// multi-tenant documents name the issuer `{tenantid}` literally, which
    /// `openidconnect`'s discovery refuses: those are read as they are (each
    /// token's issuer is then checked against its own tenant).
    async fn discover(&self) -> Result<CoreProviderMetadata, ProviderError> {
        let http = http::caller(&self.http);
        let meta = if self.multi_tenant() {
            let url = format!(
                "{}/.well-known/openid-configuration",
                self.issuer()?.as_str().trim_end_matches('/')
            );
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| ProviderError::Unavailable(format!("discovery: {e}")))?;
            if !resp.status().is_success() {
                return Err(ProviderError::Unavailable(format!(
                    "discovery: {}",
                    resp.status()
                )));
            }
            let body = http::read_body(resp)
                .await
                .map_err(|e| ProviderError::Unavailable(format!("discovery: {e}")))?;
            let meta: CoreProviderMetadata = serde_json::from_slice(&body)
                .map_err(|e| ProviderError::Unavailable(format!("discovery document: {e}")))?;
            let jwks = CoreJsonWebKeySet::fetch_async(meta.jwks_uri(), &http)
                .await
                .map_err(|e| ProviderError::Unavailable(format!("keys: {e}")))?;
            meta.set_jwks(jwks)
        } else {
            CoreProviderMetadata::discover_async(self.issuer()?, &http)
                .await
                .map_err(|e| ProviderError::Unavailable(format!("discovery: {e}")))?
        };
        self.check_endpoints(&meta)?;
        Ok(meta)
    }

    /// A provider's document may not send Portcullis (and its client
    /// secret) anywhere but https, or plain http on the loopback when the
    /// issuer itself is a loopback http URL (tests, a sidecar).
    fn check_endpoints(&self, meta: &CoreProviderMetadata) -> Result<(), ProviderError> {
        let issuer_loopback = is_loopback_http(&self.issuer()?.url().clone());
        let mut urls = vec![
            (
                "authorization_endpoint",
                meta.authorization_endpoint().url().clone(),
            ),
            ("jwks_uri", meta.jwks_uri().url().clone()),
        ];
        if let Some(t) = meta.token_endpoint() {
            urls.push(("token_endpoint", t.url().clone()));
        }
        for (what, url) in urls {
            let ok = url.scheme() == "https" || (issuer_loopback && is_loopback_http(&url));
            if !ok {
                return Err(ProviderError::Unavailable(format!(
                    "the discovery document's {what} {url} is neither https nor loopback"
                )));
            }
        }
        Ok(())
    }

    async fn metadata(
        &self,
        now_ms: u64,
        refetch_keys: bool,
    ) -> Result<CoreProviderMetadata, ProviderError> {
        let mut state = self.state.lock().await;
        let fresh = state
            .cached
            .as_ref()
            .is_some_and(|c| now_ms.saturating_sub(c.fetched_ms) < ms(METADATA_TTL));
        if !fresh {
            let backing_off = state
                .failed_ms
                .is_some_and(|f| now_ms.saturating_sub(f) < ms(FAILURE_BACKOFF));
            let found = if backing_off {
                Err(ProviderError::Unavailable(
                    "discovery failed moments ago".into(),
                ))
            } else {
                self.discover().await
            };
            match found {
                Ok(meta) => {
                    state.cached = Some(Cached {
                        meta,
                        fetched_ms: now_ms,
                        jwks_ms: now_ms,
                    });
                    state.failed_ms = None;
                }
                Err(e) => {
                    if !backing_off {
                        state.failed_ms = Some(now_ms);
                    }
                    // A document fetched before still serves while the
                    // provider cannot be reached.
                    match &state.cached {
                        Some(c) => {
                            tracing::warn!(provider = %self.cfg.name, error = %e, "using the last discovery document");
                            return Ok(c.meta.clone());
                        }
                        None => return Err(e),
                    }
                }
            }
        } else if refetch_keys
            && let Some(c) = state.cached.as_mut()
            && now_ms.saturating_sub(c.jwks_ms) >= ms(JWKS_REFETCH)
        {
            // Counted as a fetch even when it fails: a forged kid cannot
            // make every request wait on the provider.
            c.jwks_ms = now_ms;
            let http = http::caller(&self.http);
            let jwks = CoreJsonWebKeySet::fetch_async(c.meta.jwks_uri(), &http)
                .await
                .map_err(|e| ProviderError::Unavailable(format!("keys: {e}")))?;
            c.meta = c.meta.clone().set_jwks(jwks);
            tracing::info!(provider = %self.cfg.name, "fetched the provider's keys again (a token named an unknown key)");
        }
        state
            .cached
            .as_ref()
            .map(|c| c.meta.clone())
            .ok_or_else(|| ProviderError::Unavailable("no discovery document".into()))
    }

    /// The provider's authorization URL for one sign-in.
    pub async fn authorize_url(
        &self,
        callback: &str,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
        now_ms: u64,
    ) -> Result<String, ProviderError> {
        let meta = self.metadata(now_ms, false).await?;
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.cfg.client_id.clone()),
            None,
        )
        .set_redirect_uri(redirect(callback)?);
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_owned(),
        ));
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for s in self.cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if matches!(self.cfg.kind, Kind::Apple { .. }) {
            req = req.add_extra_param("response_mode", "form_post");
        }
        Ok(req.url().0.to_string())
    }

    /// Exchanges an authorization code and checks the ID token it brings.
    pub async fn exchange(
        &self,
        callback: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        client_secret: Option<String>,
        now_ms: u64,
    ) -> Result<Identity, ProviderError> {
        let meta = self.metadata(now_ms, false).await?;
        // client_secret_basic unless the provider takes only the body form
        // (Apple: client_secret_post).
        let post_only = meta
            .token_endpoint_auth_methods_supported()
            .is_some_and(|m| {
                m.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
            });
        let client = CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.cfg.client_id.clone()),
            client_secret.map(ClientSecret::new),
        )
        .set_redirect_uri(redirect(callback)?)
        .set_auth_type(if post_only {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
        let http = http::caller(&self.http);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ProviderError::Config(format!("token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(r) => {
                    ProviderError::Rejected(format!("code exchange refused: {}", r.error()))
                }
                other => ProviderError::Unavailable(format!("code exchange: {other}")),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| ProviderError::Rejected("no ID token in the answer".into()))?;
        self.check(&id_token.to_string(), Some(nonce), &[], now_ms)
            .await
    }

    /// Checks an ID token: signature by a key of the provider's JWKS (one
    /// fetch again when its key is unknown), `iss`, `aud` (our client id or
    /// one of `audiences`), `azp`, `exp`, `iat` not in the future, and
    /// `nonce` when given.
    pub async fn check(
        &self,
        token: &str,
        nonce: Option<&str>,
        audiences: &[String],
        now_ms: u64,
    ) -> Result<Identity, ProviderError> {
        let parsed = CoreIdToken::from_str(token)
            .map_err(|e| ProviderError::Rejected(format!("malformed ID token: {e}")))?;
        let mut meta = self.metadata(now_ms, false).await?;
        for attempt in 0..2 {
            match self.verify(&parsed, &meta, nonce, audiences, now_ms) {
                Err(ProviderError::UnknownKey) if attempt == 0 => {
                    meta = self.metadata(now_ms, true).await?;
                }
                Err(ProviderError::UnknownKey) => {
                    return Err(ProviderError::Rejected(
                        "signed by a key the provider does not publish".into(),
                    ));
                }
                other => return other,
            }
        }
        Err(ProviderError::Rejected("unverifiable ID token".into()))
    }

    fn verify(
        &self,
        token: &CoreIdToken,
        meta: &CoreProviderMetadata,
        nonce: Option<&str>,
        audiences: &[String],
        now_ms: u64,
    ) -> Result<Identity, ProviderError> {
        let now = DateTime::<Utc>::from_timestamp_millis(i64::try_from(now_ms).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let multi_tenant =
            matches!(&self.cfg.kind, Kind::Microsoft { tenant } if is_multi_tenant(tenant));
        let extra: Vec<String> = audiences.to_vec();
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(self.cfg.client_id.clone()),
            meta.issuer().clone(),
            meta.jwks().clone(),
        )
        .set_allowed_algs(ALGS)
        .require_issuer_match(!multi_tenant)
        // A native app's token names the app's own client id: the audience
        // (and `azp`) rules are checked below against every accepted id.
        .require_audience_match(extra.is_empty())
        .set_other_audience_verifier_fn(move |aud| extra.iter().any(|a| a == aud.as_str()))
        .set_time_fn(move || now)
        .set_issue_time_verifier_fn(move |iat: DateTime<Utc>| {
            if iat.timestamp() > now.timestamp() + IAT_SKEW_SECS {
                Err("issued in the future".into())
            } else {
                Ok(())
            }
        });
        let claims = match nonce {
            Some(n) => token.claims(&verifier, &Nonce::new(n.to_owned())),
            None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        }
        .map_err(|e| match e {
            ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            ) => ProviderError::UnknownKey,
            other => ProviderError::Rejected(other.to_string()),
        })?;
        // Every audience must be ours (our client id, or for a native app's
        // token one of the configured app ids), and with several, `azp`
        // names one of them.
        let ours = |a: &str| a == self.cfg.client_id || audiences.iter().any(|x| x == a);
        let auds = claims.audiences();
        if auds.is_empty() || !auds.iter().all(|a| ours(a.as_str())) {
            return Err(ProviderError::Rejected("not issued to us".into()));
        }
        match claims.authorized_party() {
            Some(azp) if !ours(azp.as_str()) => {
                return Err(ProviderError::Rejected(
                    "authorized party is not ours".into(),
                ));
            }
            None if auds.len() > 1 => {
                return Err(ProviderError::Rejected(
                    "several audiences and no azp".into(),
                ));
            }
            _ => {}
        }
        if audiences.is_empty()
            && claims
                .authorized_party()
                .is_some_and(|azp| azp.as_str() != self.cfg.client_id)
        {
            return Err(ProviderError::Rejected(
                "authorized party is another client".into(),
            ));
        }
        if let Kind::Microsoft { tenant } = &self.cfg.kind
            && multi_tenant
        {
            check_tenant_issuer(token, claims.issuer().as_str(), tenant)?;
        }
        let email = claims.email().map(|e| e.as_str().to_owned());
        Ok(Identity {
            subject: claims.subject().as_str().to_owned(),
            email,
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned()),
            expires_at_ms: u64::try_from(claims.expiration().timestamp_millis()).ok(),
        })
    }
}

fn redirect(callback: &str) -> Result<RedirectUrl, ProviderError> {
    RedirectUrl::new(callback.to_owned())
        .map_err(|e| ProviderError::Config(format!("callback: {e}")))
}

fn is_multi_tenant(tenant: &str) -> bool {
    matches!(tenant, "common" | "organizations" | "consumers")
}

/// Microsoft's consumer (personal account) tenant.
const MICROSOFT_CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Microsoft's multi-tenant endpoints sign tokens whose `iss` names the
/// user's tenant: it must be exactly the issuer of the token's own `tid`,
/// and the tenant must be of the configured class (`organizations`: not
/// the personal-account tenant; `consumers`: only that one).
fn check_tenant_issuer(token: &CoreIdToken, iss: &str, tenant: &str) -> Result<(), ProviderError> {
    use base64::Engine as _;
    let text = token.to_string();
    let payload = text
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(&p).ok())
        .ok_or_else(|| ProviderError::Rejected("unreadable claims".into()))?;
    let tid = payload["tid"]
        .as_str()
        .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
        .ok_or_else(|| ProviderError::Rejected("no tenant id".into()))?;
    if iss != format!("https://login.microsoftonline.com/{tid}/v2.0") {
        return Err(ProviderError::Rejected(
            "issuer is not the token's tenant".into(),
        ));
    }
    let class_ok = match tenant {
        "organizations" => tid != MICROSOFT_CONSUMERS,
        "consumers" => tid == MICROSOFT_CONSUMERS,
        _ => true,
    };
    if class_ok {
        Ok(())
    } else {
        Err(ProviderError::Rejected(format!(
            "a token of another tenant class than {tenant}"
        )))
    }
}

/// Whether `url` is plain http to a loopback host.
fn is_loopback_http(url: &openidconnect::url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
            Some(openidconnect::url::Host::Ipv4(a)) => a.is_loopback(),
            Some(openidconnect::url::Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn token(claims: serde_json::Value) -> CoreIdToken {
        let part = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let text = format!(
            "{}.{}.{}",
            part(serde_json::json!({"alg": "RS256", "kid": "k"})),
            part(claims),
            URL_SAFE_NO_PAD.encode(b"sig")
        );
        CoreIdToken::from_str(&text).unwrap()
    }

    /// Microsoft's multi-tenant endpoints: the token's `iss` must be the
    /// issuer of the token's own tenant, never another tenant's.
    #[test]
    fn a_multi_tenant_token_names_its_own_tenant() {
        let tid = "9188040d-6c67-4c5b-b112-36a304b66dad";
        let claims = |iss: &str, tid: Option<&str>| {
            let mut c = serde_json::json!({"iss": iss, "aud": "app", "sub": "s", "exp": 2_000_000_000u64, "iat": 1_700_000_000u64});
            if let Some(t) = tid {
                c["tid"] = serde_json::json!(t);
            }
            c
        };
        let own = format!("https://login.microsoftonline.com/{tid}/v2.0");
        assert!(check_tenant_issuer(&token(claims(&own, Some(tid))), &own, "common").is_ok());
        assert!(check_tenant_issuer(&token(claims(&own, Some(tid))), &own, "consumers").is_ok());
        // The personal-account tenant is no organization.
        assert!(
            check_tenant_issuer(&token(claims(&own, Some(tid))), &own, "organizations").is_err()
        );
        let other = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0";
        assert!(check_tenant_issuer(&token(claims(other, Some(tid))), other, "common").is_err());
        assert!(check_tenant_issuer(&token(claims(&own, None)), &own, "common").is_err());
        let evil = "https://evil.example/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0";
        assert!(check_tenant_issuer(&token(claims(evil, Some(tid))), evil, "common").is_err());
        assert!(is_multi_tenant("common") && is_multi_tenant("organizations"));
        assert!(!is_multi_tenant(tid));
    }
}
