//! Bodies shared by several endpoints (a user, a token response, a mailed
//! token); each endpoint's own bodies live in its module under
//! [`crate::api`]. The OpenAPI document is generated from these types.

use portcullis_engine::{TokenGrant, UserView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::json::{Field, required};

/// `POST /v1/email/verification/confirm` (and the other mailed-token confirmations).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmTokenRequest {
    /// The token from the mailed link's `token=` parameter.
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
}

impl ConfirmTokenRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("token")];
}

/// A user.
#[derive(Serialize, ToSchema)]
pub struct User {
    /// User id (UUID).
    #[schema(example = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")]
    pub id: String,
    /// Normalized email.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// Picture URL.
    pub picture_url: Option<String>,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Whether TOTP MFA is on.
    pub mfa_enabled: bool,
    /// Creation time, RFC 3339.
    pub created_at: String,
}

impl From<&UserView> for User {
    fn from(u: &UserView) -> User {
        User {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            picture_url: u.picture_url.clone(),
            email_verified: u.email_verified,
            mfa_enabled: u.mfa_enabled,
            created_at: u.created_at.clone(),
        }
    }
}

/// Tokens of a session.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// EdDSA-signed JWT.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Access-token lifetime in seconds.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// Opaque refresh token; rotated on every use.
    pub refresh_token: String,
    /// Refresh-token lifetime in seconds.
    #[schema(example = 2592000)]
    pub refresh_expires_in: u64,
    /// Session id.
    pub session_id: String,
    /// After a password sign-in: an opaque token (90 days) the client keeps
    /// and sends as `device_token` with its next logins, so that failures
    /// from other clients never lock it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<String>,
}

impl From<&TokenGrant> for TokenResponse {
    fn from(g: &TokenGrant) -> TokenResponse {
        TokenResponse {
            access_token: g.access_token.clone(),
            token_type: "Bearer",
            expires_in: g.expires_in,
            refresh_token: g.refresh_token.to_string(),
            refresh_expires_in: g.refresh_expires_in,
            session_id: g.session_id.clone(),
            device_token: g.device_token.as_ref().map(|t| t.to_string()),
        }
    }
}
