//! What a social sign-in carries between its requests, stashed in the token
//! store under a digest of a secret the client holds, and sealed by the
//! engine (the provider-side PKCE verifier and nonce never rest in clear).

use serde::{Deserialize, Serialize};

use super::Identity;

/// Between `/authorize` and `/callback`, under the provider `state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizeState {
    /// The provider's name.
    pub provider: String,
    /// SHA-256 (base64url) of the cookie that binds the flow to the browser.
    pub cookie_hash: String,
    /// Our PKCE verifier toward the provider.
    pub pkce_verifier: String,
    /// Our nonce toward the provider.
    pub nonce: String,
    /// Where the client app wants to come back.
    pub redirect_uri: String,
    /// The client app's `state`, returned as given.
    pub client_state: String,
    /// The client app's PKCE challenge (S256), checked at the token step.
    pub code_challenge: String,
    /// A signed-in user linking this provider (from a link token).
    pub link_user: Option<String>,
}

/// Between `/callback` and `/v1/auth/social/token`, under the one-time code.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The provider's name.
    pub provider: String,
    /// Who signed in there.
    pub identity: Identity,
    /// The client app's PKCE challenge.
    pub code_challenge: String,
    /// A signed-in user linking this provider.
    pub link_user: Option<String>,
}

/// Between `POST /v1/users/me/identities/link` and `/authorize`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkGrant {
    /// The signed-in user.
    pub user_id: String,
    /// The PKCE challenge the link must be finished with.
    pub code_challenge: String,
}
