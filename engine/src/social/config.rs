//! The providers file (`PORTCULLIS_OAUTH_PROVIDERS`, TOML or JSON): which
//! providers exist, their client credentials, and where the client apps may
//! be sent back to. Secrets come from the file, a variable or a file of
//! their own; none is ever printed (`Debug` hides them).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use zeroize::Zeroizing;

/// The file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    /// Public base URL of Portcullis (the provider redirects the browser to
    /// `<public_url>/v1/oauth/<name>/callback`). Default: the issuer.
    public_url: Option<String>,
    /// Exact `redirect_uri`s client apps may ask to come back to.
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    providers: BTreeMap<String, ProviderSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderSpec {
    /// `oidc` (default), `google`, `microsoft`, `gitlab`, `apple`, `github`.
    #[serde(default)]
    kind: Option<String>,
    /// The OpenID issuer (required for `oidc`; presets know theirs).
    issuer: Option<String>,
    /// Microsoft: `common`, `organizations`, `consumers` or a tenant id.
    tenant: Option<String>,
    client_id: String,
    client_secret: Option<String>,
    client_secret_env: Option<String>,
    client_secret_file: Option<String>,
    /// Other client ids whose ID tokens `/v1/oauth/{provider}/id-token`
    /// accepts (the iOS and Android apps' own ids).
    #[serde(default)]
    extra_client_ids: Vec<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// GitHub: API base (default `https://api.github.com`) and endpoints.
    api_url: Option<String>,
    authorize_url: Option<String>,
    token_url: Option<String>,
    /// Apple: the team and key that sign the client secret, and the key
    /// (PKCS#8 PEM) inline, from a variable or a file.
    team_id: Option<String>,
    key_id: Option<String>,
    private_key_env: Option<String>,
    private_key_file: Option<String>,
    /// Shown to users; default: the name.
    display_name: Option<String>,
}

/// How a provider is spoken to. Its `Debug` never prints Apple's key.
#[derive(Clone, PartialEq, Eq)]
pub enum Kind {
    /// OpenID Connect with discovery (generic, Google, GitLab).
    Oidc,
    /// Microsoft identity platform: OpenID Connect whose issuer names the
    /// tenant of each token (multi-tenant rules).
    Microsoft {
        /// `common`, `organizations`, `consumers` or a tenant id.
        tenant: String,
    },
    /// Sign in with Apple: OpenID Connect, the client secret a signed JWT,
    /// the callback a form post.
    Apple {
        /// Apple developer team id (`iss` of the client secret).
        team_id: String,
        /// Key id of the signing key.
        key_id: String,
        /// The ES256 key, PKCS#8 PEM.
        private_key: Zeroizing<String>,
    },
    /// GitHub: OAuth 2.0 and its user API.
    GitHub {
        /// API base URL.
        api_url: String,
        /// Authorization endpoint.
        authorize_url: String,
        /// Token endpoint.
        token_url: String,
    },
}

/// One configured provider.
#[derive(Clone)]
pub struct ProviderConfig {
    /// Its name in paths (`/v1/oauth/<name>/...`).
    pub name: String,
    /// Shown to users.
    pub display_name: String,
    /// How it is spoken to.
    pub kind: Kind,
    /// The issuer (OpenID kinds).
    pub issuer: Option<String>,
    /// Our client id at the provider.
    pub client_id: String,
    /// Our client secret (public clients have none).
    pub client_secret: Option<Zeroizing<String>>,
    /// Other audiences the native-app endpoint accepts.
    pub extra_client_ids: Vec<String>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &kind_name(&self.kind))
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<hidden>"),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(kind_name(self))
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Oidc => "oidc",
        Kind::Microsoft { .. } => "microsoft",
        Kind::Apple { .. } => "apple",
        Kind::GitHub { .. } => "github",
    }
}

/// The whole file, checked.
#[derive(Debug, Clone)]
pub struct SocialConfig {
    /// Public base URL of Portcullis (no trailing slash).
    pub public_url: Option<String>,
    /// Allowed client `redirect_uri`s (exact match).
    pub redirect_uris: Vec<String>,
    /// The providers, by name.
    pub providers: Vec<ProviderConfig>,
}

/// Reads a secret given inline, by variable or by file (exactly one).
fn secret(
    what: &str,
    inline: Option<String>,
    env: Option<String>,
    file: Option<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Zeroizing<String>>, String> {
    match (inline, env, file) {
        (None, None, None) => Ok(None),
        (Some(v), None, None) => Ok(Some(Zeroizing::new(v))),
        (None, Some(var), None) => lookup(&var)
            .filter(|v| !v.is_empty())
            .map(|v| Some(Zeroizing::new(v)))
            .ok_or_else(|| format!("{what}: variable {var} is not set")),
        (None, None, Some(path)) => std::fs::read_to_string(&path)
            .map(|v| Some(Zeroizing::new(v.trim_end_matches(['\n', '\r']).to_owned())))
            .map_err(|e| format!("{what}: cannot read {path}: {e}")),
        _ => Err(format!(
            "{what}: give it inline, by variable or by file, not several"
        )),
    }
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 32
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Whether `url` is an https URL, or plain http to a loopback host (parsed,
/// so `http://localhost.evil.example` is neither).
fn https_or_loopback(url: &str) -> bool {
    let Ok(u) = openidconnect::url::Url::parse(url) else {
        return false;
    };
    match u.scheme() {
        "https" => u.host().is_some(),
        "http" => match u.host() {
            Some(openidconnect::url::Host::Domain(d)) => d == "localhost",
            Some(openidconnect::url::Host::Ipv4(a)) => a.is_loopback(),
            Some(openidconnect::url::Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

impl SocialConfig {
    /// No providers.
    pub fn none() -> SocialConfig {
        SocialConfig {
            public_url: None,
            redirect_uris: Vec::new(),
            providers: Vec::new(),
        }
    }

    /// Reads and checks the file (`.json`: JSON; otherwise TOML).
    pub fn load(path: &Path) -> Result<SocialConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json = path.extension().is_some_and(|e| e == "json");
        Self::parse(&text, json, &|k| std::env::var(k).ok())
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks the file's text.
    pub fn parse(
        text: &str,
        json: bool,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<SocialConfig, String> {
        let spec: FileSpec = if json {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            toml::from_str(text).map_err(|e| e.to_string())?
        };
        let public_url = spec.public_url.map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &public_url
            && !https_or_loopback(u)
        {
            return Err(format!(
                "public_url {u}: must be https (or a loopback http URL)"
            ));
        }
        for r in &spec.redirect_uris {
            if r.contains('#') || !r.contains(':') {
                return Err(format!(
                    "redirect_uris: {r} is not an absolute URI without fragment"
                ));
            }
            if r.starts_with("http://") && !https_or_loopback(r) {
                return Err(format!("redirect_uris: {r}: plain http only on loopback"));
            }
        }
        let mut providers = Vec::new();
        for (name, p) in spec.providers {
            providers
                .push(provider(&name, p, lookup).map_err(|e| format!("provider {name}: {e}"))?);
        }
        Ok(SocialConfig {
            public_url,
            redirect_uris: spec.redirect_uris,
            providers,
        })
    }
}

fn provider(
    name: &str,
    p: ProviderSpec,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig, String> {
    if !valid_name(name) {
        return Err("a name is 1-32 characters of a-z, 0-9, - and _".into());
    }
    let kind_text = p.kind.clone().unwrap_or_else(|| "oidc".into());
    let client_secret = secret(
        "client_secret",
        p.client_secret,
        p.client_secret_env,
        p.client_secret_file,
        lookup,
    )?;
    let oidc_scopes = || vec!["openid".into(), "email".into(), "profile".into()];
    let (kind, issuer, scopes) = match kind_text.as_str() {
        "oidc" => {
            let issuer = p.issuer.ok_or("an oidc provider needs its issuer")?;
            (Kind::Oidc, Some(issuer), oidc_scopes())
        }
        "google" => (
            Kind::Oidc,
            Some(
                p.issuer
                    .unwrap_or_else(|| "https://accounts.google.com".into()),
            ),
            oidc_scopes(),
        ),
        "gitlab" => (
            Kind::Oidc,
            Some(p.issuer.unwrap_or_else(|| "https://gitlab.com".into())),
            oidc_scopes(),
        ),
        "microsoft" => {
            let tenant = p.tenant.unwrap_or_else(|| "common".into());
            if !tenant
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(format!("tenant {tenant} is not a tenant name or id"));
            }
            let issuer = p
                .issuer
                .unwrap_or_else(|| format!("https://login.microsoftonline.com/{tenant}/v2.0"));
            (Kind::Microsoft { tenant }, Some(issuer), oidc_scopes())
        }
        "apple" => {
            let private_key = secret(
                "private_key",
                None,
                p.private_key_env,
                p.private_key_file,
                lookup,
            )?
            .ok_or("apple needs private_key_env or private_key_file")?;
            (
                Kind::Apple {
                    team_id: p.team_id.ok_or("apple needs team_id")?,
                    key_id: p.key_id.ok_or("apple needs key_id")?,
                    private_key,
                },
                Some(
                    p.issuer
                        .unwrap_or_else(|| "https://appleid.apple.com".into()),
                ),
                vec!["openid".into(), "email".into(), "name".into()],
            )
        }
        "github" => (
            Kind::GitHub {
                api_url: p
                    .api_url
                    .unwrap_or_else(|| "https://api.github.com".into())
                    .trim_end_matches('/')
                    .to_owned(),
                authorize_url: p
                    .authorize_url
                    .unwrap_or_else(|| "https://github.com/login/oauth/authorize".into()),
                token_url: p
                    .token_url
                    .unwrap_or_else(|| "https://github.com/login/oauth/access_token".into()),
            },
            None,
            vec!["read:user".into(), "user:email".into()],
        ),
        other => return Err(format!("unknown kind {other}")),
    };
    if let Some(i) = &issuer
        && !https_or_loopback(i)
    {
        return Err(format!(
            "issuer {i}: must be https (or a loopback http URL)"
        ));
    }
    if matches!(kind, Kind::GitHub { .. }) && client_secret.is_none() {
        return Err("github needs a client secret".into());
    }
    if p.client_id.is_empty() {
        return Err("client_id is empty".into());
    }
    Ok(ProviderConfig {
        name: name.to_owned(),
        display_name: p.display_name.unwrap_or_else(|| name.to_owned()),
        kind,
        issuer,
        client_id: p.client_id,
        client_secret,
        extra_client_ids: p.extra_client_ids,
        scopes: p.scopes.unwrap_or(scopes),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn toml_and_json_read_alike_and_secrets_come_from_variables() {
        let toml = r#"
            public_url = "https://auth.example.com/"
            redirect_uris = ["https://app.example.com/done"]
            [providers.corp]
            issuer = "https://id.example.com"
            client_id = "portcullis"
            client_secret_env = "CORP_SECRET"
            [providers.google]
            kind = "google"
            client_id = "g"
            client_secret = "inline"
        "#;
        let env = |k: &str| (k == "CORP_SECRET").then(|| "s3cret".to_owned());
        let c = SocialConfig::parse(toml, false, &env).unwrap();
        assert_eq!(c.public_url.as_deref(), Some("https://auth.example.com"));
        let corp = c.providers.iter().find(|p| p.name == "corp").unwrap();
        assert_eq!(
            corp.client_secret.as_deref().map(String::as_str),
            Some("s3cret")
        );
        assert!(
            !format!("{corp:?}").contains("s3cret"),
            "Debug hides the secret"
        );
        let json = r#"{"redirect_uris":["https://app.example.com/done"],
            "providers":{"corp":{"issuer":"https://id.example.com","client_id":"portcullis"}}}"#;
        let j = SocialConfig::parse(json, true, &env).unwrap();
        assert_eq!(
            j.providers[0].issuer.as_deref(),
            Some("https://id.example.com")
        );
        let google = c.providers.iter().find(|p| p.name == "google").unwrap();
        assert_eq!(
            google.issuer.as_deref(),
            Some("https://accounts.google.com")
        );
    }

    #[test]
    fn mistakes_are_refused_with_the_reason() {
        let none = |_: &str| None;
        let bad = |t: &str| SocialConfig::parse(t, false, &none).unwrap_err();
        assert!(bad("[providers.x]\nclient_id='a'\n").contains("needs its issuer"));
        assert!(
            bad("[providers.x]\nissuer='http://evil.example'\nclient_id='a'\n").contains("https")
        );
        assert!(bad("[providers.X]\nissuer='https://a'\nclient_id='a'\n").contains("a-z"));
        assert!(
            bad("[providers.x]\nissuer='https://a'\nclient_id='a'\nclient_secret_env='NOPE'\n")
                .contains("NOPE is not set")
        );
        assert!(bad("[providers.x]\nissuer='https://a'\nclient_id='a'\ntypo=1\n").contains("typo"));
        assert!(bad("redirect_uris=['http://app.example.com/cb']\n").contains("loopback"));
        assert!(
            bad("[providers.x]\nissuer='http://localhost.evil.example'\nclient_id='a'\n")
                .contains("https"),
            "a host that only starts like localhost is not the loopback"
        );
        assert!(bad("redirect_uris=['http://127.0.0.1.evil.example/cb']\n").contains("loopback"));
        assert!(bad("[providers.gh]\nkind='github'\nclient_id='a'\n").contains("secret"));
    }
}
