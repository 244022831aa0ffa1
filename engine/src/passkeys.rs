//! Passkeys (WebAuthn): the relying party built from the settings, and the
//! ceremony states kept between a `start` and its `finish`.
//!
//! Every check of an attestation or an assertion (origin, RP ID hash,
//! challenge, signature, user verification, sign counter, backup flags) is
//! `webauthn-rs`'s; this module only chooses its options and reads its
//! answers.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyAuthentication, PasskeyRegistration, Url, Webauthn,
    WebauthnBuilder,
};

pub use webauthn_rs::prelude::{
    AuthenticationResult, Passkey, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};

/// How long a ceremony's challenge may be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// The most passkeys one account may register.
pub const MAX_PER_ACCOUNT: usize = 20;
/// The longest name a passkey may be given (characters).
pub const MAX_NAME_CHARS: usize = 64;

/// The relying party's settings (`PORTCULLIS_WEBAUTHN_RP_ID`,
/// `PORTCULLIS_WEBAUTHN_ORIGINS`).
#[derive(Debug, Clone)]
pub struct PasskeyConfig {
    /// The RP ID: the registrable domain credentials are scoped to.
    pub rp_id: String,
    /// The exact origins (scheme, host, port) pages may ask from.
    pub origins: Vec<Url>,
    /// The name authenticators show.
    pub rp_name: String,
}

impl PasskeyConfig {
    /// Parses the settings' values: an RP ID and a comma-separated list of
    /// origins, each of which must be the RP ID or one of its subdomains.
    pub fn parse(rp_id: &str, origins: &str, rp_name: &str) -> Result<PasskeyConfig, String> {
        let rp_id = rp_id.trim().to_ascii_lowercase();
        if rp_id.is_empty() || rp_id.contains(['/', ':', ' ']) {
            return Err(format!(
                "the RP ID '{rp_id}' must be a bare domain name, like example.com"
            ));
        }
        let mut list = Vec::new();
        for o in origins.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            let url = Url::parse(o).map_err(|e| format!("origin '{o}': {e}"))?;
            if !matches!(url.scheme(), "https" | "http")
                || url.path() != "/"
                || url.query().is_some()
                || o.ends_with('/')
            {
                return Err(format!(
                    "origin '{o}' must be a scheme, host and optional port, like https://app.example.com"
                ));
            }
            let host = url.host_str().unwrap_or_default();
            if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                return Err(format!(
                    "origin '{o}' is not on the RP ID '{rp_id}' or one of its subdomains"
                ));
            }
            if url.scheme() == "http" && host != "localhost" && !host.ends_with(".localhost") {
                return Err(format!(
                    "origin '{o}': browsers allow WebAuthn over http only on localhost"
                ));
            }
            list.push(url);
        }
        if list.is_empty() {
            return Err("at least one origin is needed".into());
        }
        let cfg = PasskeyConfig {
            rp_id,
            origins: list,
            rp_name: rp_name.to_owned(),
        };
        cfg.relying_party().map(|_| cfg)
    }

    /// The `webauthn-rs` relying party of these settings.
    pub(crate) fn relying_party(&self) -> Result<Webauthn, String> {
        let mut b = WebauthnBuilder::new(&self.rp_id, &self.origins[0])
            .map_err(|e| format!("WebAuthn settings: {e}"))?
            .rp_name(&self.rp_name)
            .timeout(CHALLENGE_TTL);
        for o in &self.origins[1..] {
            b = b.append_allowed_origin(o);
        }
        b.build().map_err(|e| format!("WebAuthn settings: {e}"))
    }
}

/// The longest credential id kept (bytes; WebAuthn Level 3 caps them at
/// 1023): a longer one could not be named in a path to delete it.
pub const MAX_ID_BYTES: usize = 1023;

/// A registration waiting for its `finish`, stashed under its challenge.
#[derive(Serialize, Deserialize)]
pub(crate) struct Registration {
    /// Whose.
    pub user_id: String,
    /// The session that started it (base64url id): only it may finish.
    pub session_id: String,
    /// `webauthn-rs`'s state.
    pub state: PasskeyRegistration,
}

/// A sign-in with a discoverable credential waiting for its `finish`.
#[derive(Serialize, Deserialize)]
pub(crate) struct SignIn {
    /// `webauthn-rs`'s state.
    pub state: DiscoverableAuthentication,
}

/// A second-factor assertion waiting for `/v1/auth/login/mfa`.
#[derive(Serialize, Deserialize)]
pub(crate) struct SecondFactor {
    /// Whose.
    pub user_id: String,
    /// `webauthn-rs`'s state (the account's credentials are allowed).
    pub state: PasskeyAuthentication,
}

/// The challenge a credential answers (from its `clientDataJSON`), as the
/// base64url text the ceremony was stashed under; `None` when the
/// credential carries none that could be ours.
pub(crate) fn challenge_of(client_data_json: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct ClientData {
        challenge: String,
    }
    let c: ClientData = serde_json::from_slice(client_data_json).ok()?;
    // Normalized (padding or the standard alphabet make no other key).
    let raw = URL_SAFE_NO_PAD
        .decode(c.challenge.trim_end_matches('='))
        .ok()?;
    (raw.len() >= 16 && raw.len() <= 64).then(|| URL_SAFE_NO_PAD.encode(raw))
}

/// What a user's passkeys are sealed for (the data key's associated data):
/// a sealed passkey moved to another user, or into another secret's place,
/// does not open.
pub(crate) fn sealing_owner(user: &portcullis_storage::UserId) -> Vec<u8> {
    let mut o = b"passkey:".to_vec();
    o.extend_from_slice(&user.0);
    o
}

/// A credential id as clients see it (base64url).
pub fn id_text(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// The RFC 8176 `amr` of a passkey sign-in: a hardware-bound key (`hwk`)
/// or one the authenticator may copy elsewhere (backup-eligible: `swk`),
/// with the user verified on the device (`user`).
pub fn amr(backup_eligible: bool) -> [&'static str; 2] {
    if backup_eligible {
        ["swk", "user"]
    } else {
        ["hwk", "user"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_must_sit_on_the_rp_id() {
        assert!(PasskeyConfig::parse("localhost", "http://localhost:8080", "P").is_ok());
        assert!(
            PasskeyConfig::parse(
                "example.com",
                "https://example.com, https://app.example.com:8443",
                "P"
            )
            .is_ok()
        );
        for (rp, origins) in [
            ("example.com", "https://evil.com"),
            ("example.com", "https://notexample.com"),
            ("example.com", "http://app.example.com"),
            ("example.com", "https://example.com/login"),
            ("example.com", ""),
            ("https://example.com", "https://example.com"),
            ("localhost", "ftp://localhost"),
        ] {
            assert!(
                PasskeyConfig::parse(rp, origins, "P").is_err(),
                "{rp} {origins}"
            );
        }
    }

    #[test]
    fn the_challenge_is_read_from_client_data() {
        let c = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let json = format!(r#"{{"type":"webauthn.get","challenge":"{c}","origin":"x"}}"#);
        assert_eq!(challenge_of(json.as_bytes()), Some(c.clone()));
        let padded = format!(r#"{{"challenge":"{c}="}}"#);
        assert_eq!(challenge_of(padded.as_bytes()), Some(c));
        assert_eq!(challenge_of(br#"{"challenge":"AAAA"}"#), None);
        assert_eq!(challenge_of(b"not json"), None);
    }
}
