//! Request and response bodies, as clients see them. The OpenAPI document is
//! generated from these types.

use portcullis_engine::{Introspection, SessionView, TokenGrant, UserView};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::json::{Field, nullable, optional, required};

/// `POST /v1/auth/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Login email; trimmed and compared case-insensitively.
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: String,
    /// 8 to 1024 bytes of UTF-8, not trimmed.
    #[schema(value_type = String, min_length = 8, max_length = 1024, format = Password)]
    pub password: Zeroizing<String>,
    /// Display name (1 to 200 characters).
    #[serde(default)]
    pub name: Option<String>,
}

impl RegisterRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] =
        &[required("email"), required("password"), optional("name")];
}

/// `POST /v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login email.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Zeroizing<String>,
    /// The `device_token` a previous successful login of this client
    /// returned: failures counted against the account from elsewhere never
    /// lock out a client that presents a valid one.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "pdt_...")]
    pub device_token: Option<Zeroizing<String>>,
}

impl LoginRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[
        required("email"),
        required("password"),
        optional("device_token"),
    ];
}

/// `POST /v1/auth/refresh`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The current refresh token of the session.
    #[schema(value_type = String)]
    pub refresh_token: Zeroizing<String>,
}

impl RefreshRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("refresh_token")];
}

/// `PATCH /v1/users/me`: absent fields stay, `null` clears.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// Display name (1 to 200 characters), or null to clear it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// An https:// URL (at most 2048 bytes), or null to clear it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub picture_url: Option<Option<String>>,
}

impl UpdateMeRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[nullable("name"), nullable("picture_url")];
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

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

/// `POST /v1/password/forgot`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotPasswordRequest {
    /// The account's email address.
    pub email: String,
}

impl ForgotPasswordRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("email")];
}

/// `POST /v1/password/reset`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The token from the mailed link's `token=` parameter.
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
    /// The new password: 8 to 1024 bytes of UTF-8, not trimmed.
    #[schema(value_type = String)]
    pub new_password: Zeroizing<String>,
}

impl ResetPasswordRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("token"), required("new_password")];
}

/// `POST /v1/password/change`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password (re-verified; wrong ones count toward the lockout).
    #[schema(value_type = String)]
    pub current_password: Zeroizing<String>,
    /// The new password: 8 to 1024 bytes of UTF-8, not trimmed.
    #[schema(value_type = String)]
    pub new_password: Zeroizing<String>,
}

impl ChangePasswordRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("current_password"), required("new_password")];
}

/// `POST /v1/email/change`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The new sign-in address.
    pub new_email: String,
    /// The current password (re-verified; wrong ones count toward the lockout).
    #[schema(value_type = String)]
    pub password: Zeroizing<String>,
}

impl EmailChangeRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("new_email"), required("password")];
}

/// `POST /v1/auth/login` when TOTP is on: the password was right, now the code.
#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// Send it with a code to `POST /v1/auth/login/mfa`.
    pub mfa_token: String,
    /// Seconds the `mfa_token` stays valid.
    pub expires_in: u64,
}

/// `POST /v1/auth/login/mfa`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfaRequest {
    /// The `mfa_token` of the login's first step.
    #[schema(value_type = String)]
    pub mfa_token: Zeroizing<String>,
    /// A current 6-digit TOTP code, or an unused recovery code.
    pub code: String,
}

impl LoginMfaRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("mfa_token"), required("code")];
}

/// `POST /v1/mfa/totp/confirm` and `/disable`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaCodeRequest {
    /// A current 6-digit TOTP code.
    pub code: String,
}

impl MfaCodeRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("code")];
}

/// `POST /v1/mfa/totp/enroll`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpEnrollRequest {
    /// The current password: a stolen access token alone enrolls nothing.
    #[schema(value_type = String, format = Password)]
    pub password: Zeroizing<String>,
}

impl TotpEnrollRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("password")];
}

/// `POST /v1/mfa/totp/disable`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpDisableRequest {
    /// A current 6-digit TOTP code, or an unused recovery code.
    pub code: String,
    /// The current password.
    #[schema(value_type = String, format = Password)]
    pub password: Zeroizing<String>,
}

impl TotpDisableRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("code"), required("password")];
}

/// `POST /v1/mfa/totp/enroll`.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollResponse {
    /// The secret, base32 (RFC 4648, no padding), for manual entry.
    pub secret: String,
    /// `otpauth://totp/...` for a QR code (SHA1, 6 digits, 30 s).
    pub otpauth_uri: String,
}

/// `POST /v1/mfa/totp/confirm`.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use recovery codes, shown only now.
    pub recovery_codes: Vec<String>,
}

/// RFC 7662 / RFC 7009 request (JSON form; `application/x-www-form-urlencoded` is accepted too).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The token.
    #[schema(value_type = String)]
    pub token: Zeroizing<String>,
    /// `access_token` or `refresh_token`.
    #[serde(default)]
    pub token_type_hint: Option<String>,
}

impl TokenRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("token"), optional("token_type_hint")];
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

/// `POST /v1/auth/register` answer: the user and its first session's tokens.
#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    /// The new user.
    pub user: User,
    /// Tokens (the token response fields, inline).
    #[serde(flatten)]
    pub tokens: TokenResponse,
}

/// A session.
#[derive(Serialize, ToSchema)]
pub struct Session {
    /// Session id.
    pub id: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last login or refresh, RFC 3339.
    pub last_used_at: String,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

impl From<&SessionView> for Session {
    fn from(s: &SessionView) -> Session {
        Session {
            id: s.id.clone(),
            created_at: s.created_at.clone(),
            last_used_at: s.last_used_at.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current: s.current,
        }
    }
}

/// `GET /v1/sessions` answer.
#[derive(Serialize, ToSchema)]
pub struct SessionsResponse {
    /// Live sessions, oldest first.
    pub sessions: Vec<Session>,
}

/// RFC 7662 introspection answer.
#[derive(Serialize, ToSchema)]
pub struct IntrospectionResponse {
    /// Whether the token is live.
    pub active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at (access tokens) or last refreshed (refresh tokens), Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Token id (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl From<&Introspection> for IntrospectionResponse {
    fn from(i: &Introspection) -> IntrospectionResponse {
        match i {
            Introspection::Inactive => IntrospectionResponse {
                active: false,
                token_type: None,
                sub: None,
                sid: None,
                exp: None,
                iat: None,
                iss: None,
                aud: None,
                jti: None,
            },
            Introspection::Active {
                token_type,
                sub,
                sid,
                exp,
                iat,
                iss,
                aud,
                jti,
            } => IntrospectionResponse {
                active: true,
                token_type: Some(token_type),
                sub: Some(sub.clone()),
                sid: Some(sid.clone()),
                exp: Some(*exp),
                iat: Some(*iat),
                iss: Some(iss.clone()),
                aud: aud.clone(),
                jti: jti.clone(),
            },
        }
    }
}

/// `GET /healthz` answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// `GET /readyz` answer.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (admin listener only: ready, but a cluster store
    /// has a database node this process cannot reach) or `not_ready`.
    pub status: &'static str,
    /// Each dependency and whether it is usable.
    #[schema(value_type = Object)]
    pub checks: std::collections::BTreeMap<&'static str, bool>,
    /// Admin listener only: for each cluster store, its database nodes this
    /// process reaches (`up`) and cannot reach (`down`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub nodes: std::collections::BTreeMap<&'static str, Nodes>,
}

/// A cluster store's database nodes in a [`Readiness`] answer.
#[derive(Serialize, ToSchema)]
pub struct Nodes {
    /// Reached.
    pub up: usize,
    /// Known but not reached.
    pub down: usize,
}

/// One JSON Web Key (Ed25519).
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// Public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    #[schema(rename = "use")]
    pub use_: String,
    /// `EdDSA`.
    pub alg: String,
}

/// The JWK set.
#[derive(Serialize, ToSchema)]
pub struct JwkSet {
    /// Published keys, including the next one before it signs.
    pub keys: Vec<Jwk>,
}

/// Discovery metadata (the subset of OpenID Provider / RFC 8414 metadata that applies).
#[derive(Serialize, ToSchema)]
pub struct Discovery {
    /// Issuer (`iss` of access tokens).
    pub issuer: String,
    /// JWK set URL.
    pub jwks_uri: String,
    /// RFC 7662 endpoint.
    pub introspection_endpoint: String,
    /// RFC 7009 endpoint.
    pub revocation_endpoint: String,
    /// Client authentication at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Subject identifier types.
    pub subject_types_supported: Vec<&'static str>,
    /// Signing algorithms of access tokens.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    /// Claims in access tokens.
    pub claims_supported: Vec<&'static str>,
}

impl Discovery {
    /// The document for `issuer`.
    pub fn for_issuer(issuer: &str) -> Discovery {
        let base = issuer.trim_end_matches('/');
        Discovery {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            introspection_endpoint: format!("{base}/v1/oauth/introspect"),
            revocation_endpoint: format!("{base}/v1/oauth/revoke"),
            introspection_endpoint_auth_methods_supported: vec!["none"],
            revocation_endpoint_auth_methods_supported: vec!["none"],
            subject_types_supported: vec!["public"],
            access_token_signing_alg_values_supported: vec!["EdDSA"],
            claims_supported: vec!["iss", "aud", "sub", "sid", "jti", "iat", "exp", "amr"],
        }
    }
}
