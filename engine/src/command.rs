//! What the edge may ask of the engine ([`Command`]) and what it gets back
//! ([`Reply`]). The edge speaks only these types.

use std::net::IpAddr;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::domain::{Email, Password};
use crate::error::AuthError;

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

/// A field of a partial update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Leave as is (the field was absent).
    #[default]
    Keep,
    /// Remove the value (the field was `null`).
    Clear,
    /// Set a new value.
    Set(T),
}

/// Profile fields a user may change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfilePatch {
    /// Display name.
    pub name: Patch<String>,
    /// Picture URL.
    pub picture_url: Patch<String>,
}

/// Which kind of token an introspection or revocation request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenHint {
    /// An access JWT.
    AccessToken,
    /// An opaque refresh token.
    RefreshToken,
}

/// A request to the engine. Its `Debug` names the command and hides every
/// secret (passwords, tokens).
pub enum Command {
    /// Create an account and open its first session.
    Register {
        /// Login email.
        email: Email,
        /// Password.
        password: Password,
        /// Display name.
        name: Option<String>,
        /// Caller.
        client: ClientInfo,
    },
    /// Password login.
    Login {
        /// Login email.
        email: Email,
        /// Password.
        password: Password,
        /// The device token a previous login of this client returned.
        device_token: Option<Zeroizing<String>>,
        /// Caller.
        client: ClientInfo,
    },
    /// Rotate a refresh token.
    Refresh {
        /// The presented refresh token.
        refresh_token: Zeroizing<String>,
        /// Caller.
        client: ClientInfo,
    },
    /// End the session of the bearer token.
    Logout {
        /// Access token.
        bearer: Bearer,
    },
    /// End every session of the bearer's user.
    LogoutAll {
        /// Access token.
        bearer: Bearer,
    },
    /// The bearer's profile.
    Me {
        /// Access token.
        bearer: Bearer,
    },
    /// Change the bearer's profile.
    UpdateMe {
        /// Access token.
        bearer: Bearer,
        /// Changes.
        patch: ProfilePatch,
    },
    /// The bearer's live sessions.
    ListSessions {
        /// Access token.
        bearer: Bearer,
    },
    /// End one of the bearer's sessions.
    DeleteSession {
        /// Access token.
        bearer: Bearer,
        /// The session id from the path.
        session_id: String,
    },
    /// Mail a verification link to the bearer's address.
    RequestEmailVerification {
        /// Access token.
        bearer: Bearer,
        /// Caller.
        client: ClientInfo,
    },
    /// Confirm an address with the mailed token.
    ConfirmEmailVerification {
        /// The token from the link.
        token: Zeroizing<String>,
    },
    /// Mail a password reset link if the address has an account (always
    /// accepted, at once: the answer tells nothing about the address).
    ForgotPassword {
        /// The address.
        email: Email,
        /// Caller.
        client: ClientInfo,
    },
    /// Set a new password with the mailed reset token.
    ResetPassword {
        /// The token from the link.
        token: Zeroizing<String>,
        /// The new password.
        new_password: Password,
        /// Caller (its own lockout for the account is cleared).
        client: ClientInfo,
    },
    /// Change the bearer's password (the current one re-verified).
    ChangePassword {
        /// Access token.
        bearer: Bearer,
        /// The current password.
        current_password: Password,
        /// The new password.
        new_password: Password,
        /// Caller.
        client: ClientInfo,
    },
    /// Ask to move the bearer's account to a new address (password re-verified).
    RequestEmailChange {
        /// Access token.
        bearer: Bearer,
        /// The new address.
        new_email: Email,
        /// The current password.
        password: Password,
        /// Caller.
        client: ClientInfo,
    },
    /// Confirm an email change with the token mailed to the new address.
    ConfirmEmailChange {
        /// The token from the link.
        token: Zeroizing<String>,
    },
    /// Start a TOTP enrollment (a new secret; not active until confirmed).
    EnrollTotp {
        /// Access token.
        bearer: Bearer,
        /// The current password (a bare access token changes no credential).
        password: Password,
        /// Caller.
        client: ClientInfo,
    },
    /// Confirm the enrollment with a code: MFA is on; recovery codes issued.
    ConfirmTotp {
        /// Access token.
        bearer: Bearer,
        /// A current code.
        code: String,
        /// Caller.
        client: ClientInfo,
    },
    /// Turn TOTP MFA off (a valid code or recovery code, and the password).
    DisableTotp {
        /// Access token.
        bearer: Bearer,
        /// A current code or a recovery code.
        code: String,
        /// The current password.
        password: Password,
        /// Caller.
        client: ClientInfo,
    },
    /// The second step of a login with MFA.
    LoginMfa {
        /// The `mfa_token` of the first step.
        mfa_token: Zeroizing<String>,
        /// A current TOTP code or an unused recovery code.
        code: String,
        /// Caller.
        client: ClientInfo,
    },
    /// RFC 7662 introspection.
    Introspect {
        /// The token to inspect.
        token: Zeroizing<String>,
        /// The caller's guess of its kind.
        hint: Option<TokenHint>,
    },
    /// RFC 7009 revocation.
    Revoke {
        /// The token to revoke.
        token: Zeroizing<String>,
        /// The caller's guess of its kind.
        hint: Option<TokenHint>,
    },
    /// The JWKS document.
    Jwks,
    /// Readiness of stores and keys.
    Readiness,
    /// A no-op that makes one round trip through a shard actor (benchmarks, probes).
    Ping,
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

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Command::Register { .. } => "Register",
            Command::Login { .. } => "Login",
            Command::Refresh { .. } => "Refresh",
            Command::Logout { .. } => "Logout",
            Command::LogoutAll { .. } => "LogoutAll",
            Command::Me { .. } => "Me",
            Command::UpdateMe { .. } => "UpdateMe",
            Command::ListSessions { .. } => "ListSessions",
            Command::DeleteSession { .. } => "DeleteSession",
            Command::RequestEmailVerification { .. } => "RequestEmailVerification",
            Command::ConfirmEmailVerification { .. } => "ConfirmEmailVerification",
            Command::ForgotPassword { .. } => "ForgotPassword",
            Command::ResetPassword { .. } => "ResetPassword",
            Command::ChangePassword { .. } => "ChangePassword",
            Command::RequestEmailChange { .. } => "RequestEmailChange",
            Command::ConfirmEmailChange { .. } => "ConfirmEmailChange",
            Command::EnrollTotp { .. } => "EnrollTotp",
            Command::ConfirmTotp { .. } => "ConfirmTotp",
            Command::DisableTotp { .. } => "DisableTotp",
            Command::LoginMfa { .. } => "LoginMfa",
            Command::Introspect { .. } => "Introspect",
            Command::Revoke { .. } => "Revoke",
            Command::Jwks => "Jwks",
            Command::Readiness => "Readiness",
            Command::Ping => "Ping",
        };
        write!(f, "Command::{name}")
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

/// Readiness of one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it is usable.
    pub ok: bool,
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

/// A successful answer.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Account created and signed in.
    Registered {
        /// The new user.
        user: Arc<UserView>,
        /// Its first session.
        grant: TokenGrant,
    },
    /// Signed in or refreshed.
    Granted(TokenGrant),
    /// A user.
    User(Arc<UserView>),
    /// Sessions.
    Sessions(Vec<SessionView>),
    /// Done, nothing to return.
    Done,
    /// Accepted: a message is queued for delivery.
    Accepted,
    /// The password was right; the login needs its second factor.
    MfaRequired {
        /// Token for `/v1/auth/login/mfa`.
        mfa_token: SecretText,
        /// Seconds it stays valid.
        expires_in: u64,
    },
    /// A new TOTP secret, to be confirmed.
    TotpEnrollment {
        /// The secret in base32.
        secret: SecretText,
        /// The `otpauth://` URI for authenticator apps.
        otpauth_uri: SecretText,
    },
    /// Single-use recovery codes, shown once.
    RecoveryCodes(Vec<SecretText>),
    /// Introspection result.
    Introspection(Introspection),
    /// JWKS bytes.
    Jwks(Arc<[u8]>),
    /// Readiness checks, and the database nodes of each cluster store
    /// (`user_store`) as this process sees them.
    Readiness(
        Vec<Check>,
        Vec<(&'static str, portcullis_storage::NodeCount)>,
    ),
}

impl Outcome {
    /// The variant's name (for logs: never the content, which may hold tokens).
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Registered { .. } => "Registered",
            Outcome::Granted(_) => "Granted",
            Outcome::User(_) => "User",
            Outcome::Sessions(_) => "Sessions",
            Outcome::Done => "Done",
            Outcome::Accepted => "Accepted",
            Outcome::MfaRequired { .. } => "MfaRequired",
            Outcome::TotpEnrollment { .. } => "TotpEnrollment",
            Outcome::RecoveryCodes(_) => "RecoveryCodes",
            Outcome::Introspection(_) => "Introspection",
            Outcome::Jwks(_) => "Jwks",
            Outcome::Readiness(..) => "Readiness",
        }
    }
}

/// The engine's answer to a command.
pub type Reply = Result<Outcome, AuthError>;

/// Where the answer to one command goes.
///
/// Exactly one reply is delivered: the one sent, or, when the engine drops the
/// responder unanswered, a stand-in: `Internal` if dropped by a panic (a bug),
/// else `Unavailable` (an abandoned operation at shutdown or after the
/// operation timeout). So the edge never waits forever.
pub struct Responder(Option<Box<dyn FnOnce(Reply) + Send + 'static>>);

impl Responder {
    /// A responder calling `f` with the reply.
    pub fn new(f: impl FnOnce(Reply) + Send + 'static) -> Responder {
        Responder(Some(Box::new(f)))
    }

    /// Delivers the reply.
    pub fn send(mut self, reply: Reply) {
        if let Some(f) = self.0.take() {
            f(reply);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let stand_in = if std::thread::panicking() {
                AuthError::Internal("the operation panicked".into())
            } else {
                AuthError::Unavailable {
                    retry_after_secs: 1,
                }
            };
            f(Err(stand_in));
        }
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}
