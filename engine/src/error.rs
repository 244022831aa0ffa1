//! The engine's one error type. The edge maps each variant to an HTTP status
//! and a stable `code` in exactly one place.

use crate::domain::FieldError;

/// Why an engine command failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request is well-formed JSON but its values are not acceptable.
    #[error("invalid request")]
    InvalidRequest(Vec<FieldError>),
    /// Wrong email or password (the same for an unknown email).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The account is locked after repeated failures.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the lock ends.
        retry_after_secs: u64,
    },
    /// The client address exceeded a rate limit shared by every pod.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry can pass.
        retry_after_secs: u64,
    },
    /// A per-account or per-recipient limit (mail flows, credential
    /// changes, introspection) refuses this request for now.
    #[error("too many requests for this account or address; retry in {retry_after_secs} s")]
    TooManyRequests {
        /// Seconds until a retry can pass.
        retry_after_secs: u64,
    },
    /// The new password is too easy to guess (NIST SP 800-63B 3.1.1.2).
    #[error("weak password: {reason}")]
    WeakPassword {
        /// The request field holding the password.
        field: &'static str,
        /// Why, for the user.
        reason: &'static str,
    },
    /// The email address is already registered.
    #[error("email address is already registered")]
    EmailTaken,
    /// A mailed single-use token is unknown, used, expired or of another flow.
    #[error("the token is invalid, expired or already used")]
    InvalidToken,
    /// The second factor of a login was wrong, or its `mfa_token` is
    /// unknown, used or expired.
    #[error("invalid MFA code or token")]
    InvalidMfa,
    /// A TOTP code given to confirm or disable MFA is wrong.
    #[error("invalid MFA code")]
    InvalidMfaCode,
    /// TOTP MFA is on already.
    #[error("TOTP MFA is already enabled")]
    MfaAlreadyEnabled,
    /// The email address is verified already.
    #[error("the email address is already verified")]
    AlreadyVerified,
    /// The refresh token is unknown, expired, revoked or was reused.
    #[error("refresh token is invalid, expired or revoked")]
    InvalidGrant,
    /// No usable bearer token was presented.
    #[error("authentication required: {0}")]
    Unauthenticated(TokenProblem),
    /// The referenced resource does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// A bounded queue is full; retry shortly.
    #[error("server is overloaded")]
    Overloaded {
        /// Suggested wait before retrying.
        retry_after_secs: u64,
    },
    /// A backend is unreachable or timed out; retry later.
    #[error("service temporarily unavailable")]
    Unavailable {
        /// Suggested wait before retrying.
        retry_after_secs: u64,
    },
    /// No social-login provider of that name is configured.
    #[error("unknown provider")]
    UnknownProvider,
    /// A social-login callback whose `state` is unknown, used or expired:
    /// there is no client to send the answer back to.
    #[error("the sign-in state is invalid, expired or already used")]
    InvalidState,
    /// An ID token that does not verify (signature, issuer, audience,
    /// expiry, nonce) or that was used already.
    #[error("invalid ID token")]
    InvalidIdToken,
    /// The provider's email belongs to an account it may not be linked to
    /// automatically (unverified on either side): sign in and link.
    #[error("an account with this email exists; sign in and link the provider")]
    AccountExists,
    /// Removing it would leave the account no way to sign in.
    #[error("this is the account's last way to sign in")]
    LastSignInMethod,
    /// The account's email is not verified: nothing may be linked to it
    /// before its owner has proved the mailbox.
    #[error("verify the account's email address first")]
    EmailNotVerified,
    /// The action needs a fresh sign-in (an account without a password
    /// whose session began too long ago).
    #[error("sign in again first")]
    ReauthenticationRequired,
    /// Another account of this provider is linked already: unlink it first.
    #[error("an identity of this provider is linked already")]
    IdentityExists,
    /// A passkey assertion was refused (unknown or expired challenge, wrong
    /// origin or RP ID, bad signature, no user verification, a credential
    /// not on the account, a sign counter that went backwards).
    #[error("invalid passkey")]
    InvalidPasskey,
    /// A passkey registration was refused (as above, at registration).
    #[error("invalid passkey registration")]
    InvalidPasskeyRegistration,
    /// The provider gave no email address, which every account needs.
    #[error("the provider did not share an email address")]
    EmailRequired,
    /// A bug or an unexpected backend failure. The text is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What is wrong with a presented bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// No `Authorization: Bearer` header.
    Missing,
    /// Not a token this server issued (malformed, bad signature, wrong algorithm,
    /// unknown key, wrong issuer or audience).
    Invalid,
    /// Past its `exp`.
    Expired,
    /// Its session was logged out or revoked.
    Revoked,
}

impl std::fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TokenProblem::Missing => "no bearer token",
            TokenProblem::Invalid => "the access token is invalid",
            TokenProblem::Expired => "the access token has expired",
            TokenProblem::Revoked => "the session of this access token has ended",
        })
    }
}

impl AuthError {
    /// Maps a storage error: transient failures become `Unavailable`, the rest `Internal`.
    pub(crate) fn from_store(op: &'static str, e: portcullis_storage::StoreError) -> AuthError {
        if e.is_transient() {
            tracing::warn!(op, error = %e, "storage unavailable");
            AuthError::Unavailable {
                retry_after_secs: 1,
            }
        } else {
            tracing::error!(op, error = %e, "storage failure");
            AuthError::Internal(format!("{op}: {e}"))
        }
    }
}
