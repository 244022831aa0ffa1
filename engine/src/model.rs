//! The values operations take and give back that are shared by several of
//! them (a caller's address, a user or session as clients see it, a token
//! grant, secrets shown once). Each operation's own request and reply types
//! live with it, in [`crate::ops`].

use std::net::IpAddr;
use zeroize::Zeroizing;

/// Who is calling, as far as the edge can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// Client IP (after trusted-proxy resolution).
    pub ip: Option<IpAddr>,
    /// `User-Agent`, truncated by the edge.
    pub user_agent: Option<String>,
}

/// A bearer token as presented (`None`: no `Authorization: Bearer` header).
pub type Bearer = Option<String>;

/// Which kind of token an introspection or revocation request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    /// An access JWT.
    AccessToken,
    /// An opaque refresh token.
    RefreshToken,
}

/// A user as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserView {
    /// Hyphenated UUID.
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
    /// RFC 3339 creation time.
    pub created_at: String,
}

/// Tokens for a session. Its `Debug` hides the tokens.
#[derive(Clone)]
pub struct TokenGrant {
    /// Access JWT.
    pub access_token: String,
    /// Access-token lifetime, seconds.
    pub expires_in: u64,
    /// Opaque refresh token.
    pub refresh_token: Zeroizing<String>,
    /// Refresh-token lifetime, seconds.
    pub refresh_expires_in: u64,
    /// Session id.
    pub session_id: String,
    /// A device token for the client to present at its next password
    /// logins (password sign-ins only).
    pub device_token: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenGrant")
            .field("session_id", &self.session_id)
            .field("expires_in", &self.expires_in)
            .field("refresh_expires_in", &self.refresh_expires_in)
            .finish_non_exhaustive()
    }
}

/// A session as its user sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    /// Session id.
    pub id: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last login or refresh.
    pub last_used_at: String,
    /// IP at login.
    pub ip: Option<String>,
    /// User agent at login.
    pub user_agent: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

/// An RFC 7662 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    /// Not a live token.
    Inactive,
    /// A live token.
    Active {
        /// `access_token` or `refresh_token`.
        token_type: &'static str,
        /// User id.
        sub: String,
        /// Session id.
        sid: String,
        /// Expiry (Unix seconds).
        exp: u64,
        /// Issued at (Unix seconds).
        iat: u64,
        /// Issuer.
        iss: String,
        /// Audience (access tokens).
        aud: Option<String>,
        /// Token id (access tokens).
        jti: Option<String>,
    },
}

/// Text that is a secret (a TOTP secret, a recovery code, an `mfa_token`):
/// zeroized on drop, never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(pub Zeroizing<String>);

impl SecretText {
    /// The text, to send to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<secret>")
    }
}

/// The password was right; the login needs its second factor.
#[derive(Debug, Clone)]
pub struct MfaRequired {
    /// Token for `/v1/auth/login/mfa`.
    pub mfa_token: SecretText,
    /// Seconds it stays valid.
    pub expires_in: u64,
}
