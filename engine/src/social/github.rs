//! GitHub: OAuth 2.0 (authorization code with PKCE, through `oauth2`) and
//! its REST API for who signed in. GitHub issues no ID token: the subject
//! is the numeric user id (logins can be renamed), and only the primary
//! email, and only when GitHub has verified it, counts.

use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;

use super::config::ProviderConfig;
use super::{Identity, ProviderError, http};

/// The GitHub endpoints of a provider.
pub struct GitHub {
    cfg: ProviderConfig,
    http: reqwest::Client,
    api_url: String,
    authorize_url: String,
    token_url: String,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    name: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    primary: bool,
    verified: bool,
}

impl GitHub {
    pub(super) fn new(
        cfg: ProviderConfig,
        http: reqwest::Client,
        api_url: String,
        authorize_url: String,
        token_url: String,
    ) -> GitHub {
        GitHub {
            cfg,
            http,
            api_url,
            authorize_url,
            token_url,
        }
    }

    fn urls(&self, callback: &str) -> Result<(AuthUrl, TokenUrl, RedirectUrl), ProviderError> {
        let bad =
            |what: &str, e: &dyn std::fmt::Display| ProviderError::Config(format!("{what}: {e}"));
        Ok((
            AuthUrl::new(self.authorize_url.clone()).map_err(|e| bad("authorize_url", &e))?,
            TokenUrl::new(self.token_url.clone()).map_err(|e| bad("token_url", &e))?,
            RedirectUrl::new(callback.to_owned()).map_err(|e| bad("callback", &e))?,
        ))
    }

    /// The authorization URL (PKCE S256; GitHub has no nonce).
    pub fn authorize_url(
        &self,
        callback: &str,
        state: &str,
        pkce_verifier: &str,
    ) -> Result<String, ProviderError> {
        let (auth, token, redirect) = self.urls(callback)?;
        let client = BasicClient::new(ClientId::new(self.cfg.client_id.clone()))
            .set_auth_uri(auth)
            .set_token_uri(token)
            .set_redirect_uri(redirect);
        let state = state.to_owned();
        let mut req = client
            .authorize_url(move || CsrfToken::new(state))
            .set_pkce_challenge(PkceCodeChallenge::from_code_verifier_sha256(
                &PkceCodeVerifier::new(pkce_verifier.to_owned()),
            ));
        for s in &self.cfg.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        Ok(req.url().0.to_string())
    }

    /// Exchanges the code, then asks the API who it is.
    pub async fn exchange(
        &self,
        callback: &str,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<Identity, ProviderError> {
        let (auth, token, redirect) = self.urls(callback)?;
        let secret = self
            .cfg
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.to_string()))
            .ok_or_else(|| ProviderError::Config("github needs a client secret".into()))?;
        let client = BasicClient::new(ClientId::new(self.cfg.client_id.clone()))
            .set_client_secret(secret)
            .set_auth_uri(auth)
            .set_token_uri(token)
            .set_redirect_uri(redirect);
        let http_fn = http::caller(&self.http);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&http_fn)
            .await
            .map_err(|e| match e {
                oauth2::RequestTokenError::Request(e) => {
                    ProviderError::Unavailable(format!("code exchange: {e}"))
                }
                // GitHub answers a bad code with 200 and an error object.
                other => ProviderError::Rejected(format!("code exchange refused: {other}")),
            })?;
        let access = tokens.access_token().secret().to_owned();
        let user: User = self.api(&access, "/user").await?;
        let emails: Vec<Email> = self.api(&access, "/user/emails").await?;
        Ok(identity(user, &emails))
    }

    async fn api<T: serde::de::DeserializeOwned>(
        &self,
        access: &str,
        path: &str,
    ) -> Result<T, ProviderError> {
        let resp = self
            .http
            .get(format!("{}{path}", self.api_url))
            .bearer_auth(access)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("GitHub API {path}: {e}")))?;
        let status = resp.status();
        let body = http::read_body(resp)
            .await
            .map_err(|e| ProviderError::Unavailable(format!("GitHub API {path}: {e}")))?;
        if status.is_server_error() {
            return Err(ProviderError::Unavailable(format!(
                "GitHub API {path}: {status}"
            )));
        }
        if !status.is_success() {
            return Err(ProviderError::Rejected(format!(
                "GitHub API {path}: {status}"
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Unavailable(format!("GitHub API {path}: unreadable answer: {e}"))
        })
    }
}

/// Who signed in: the numeric id, and the primary email only if verified.
fn identity(user: User, emails: &[Email]) -> Identity {
    let primary = emails.iter().find(|e| e.primary && e.verified);
    Identity {
        subject: user.id.to_string(),
        email: primary.map(|e| e.email.clone()),
        email_verified: primary.is_some(),
        name: user.name,
        expires_at_ms: None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The answers in GitHub's REST API documentation ("Get the
    /// authenticated user", "List email addresses for the authenticated
    /// user"), as recorded in tests/fixtures.
    #[test]
    fn only_a_verified_primary_email_counts() {
        let user: User =
            serde_json::from_str(include_str!("../../tests/fixtures/github/user.json")).unwrap();
        let emails: Vec<Email> =
            serde_json::from_str(include_str!("../../tests/fixtures/github/emails.json")).unwrap();
        let i = identity(user, &emails);
        assert_eq!(i.subject, "1");
        assert_eq!(i.email.as_deref(), Some("octocat@github.com"));
        assert!(i.email_verified);
        let unverified = [
            Email {
                email: "octocat@github.com".into(),
                primary: true,
                verified: false,
            },
            Email {
                email: "other@example.com".into(),
                primary: false,
                verified: true,
            },
        ];
        let i = identity(User { id: 1, name: None }, &unverified);
        assert_eq!((i.email, i.email_verified), (None, false));
    }
}
