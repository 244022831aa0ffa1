//! Every error the API can answer, mapped to status, `code` and headers in
//! this one place. Problem documents follow RFC 9457 and never carry
//! internal detail: a 500 carries only the request id, under which the cause
//! is logged.

use portcullis_engine::domain::FieldError;
use portcullis_engine::{AuthError, TokenProblem};
use serde::Serialize;

use crate::server::response::PROBLEM_JSON;
use crate::server::{FrameError, Response};

/// Errors the edge itself finds, plus the engine's.
#[derive(Debug)]
pub enum EdgeError {
    /// From the engine.
    Auth(AuthError),
    /// The request could not be framed.
    Frame(FrameError),
    /// The request did not arrive completely in time.
    Timeout,
    /// No such route.
    NotFound,
    /// The route exists with other methods.
    MethodNotAllowed(&'static str),
    /// The body is not `application/json` (or form, where allowed).
    UnsupportedMediaType(&'static str),
    /// The body is not acceptable: malformed JSON, wrong shape or values.
    InvalidBody {
        /// What is wrong overall.
        detail: String,
        /// Per-field problems.
        errors: Vec<FieldError>,
    },
    /// Per-IP rate limit.
    RateLimited {
        /// Seconds until a retry can pass.
        retry_after_secs: u64,
    },
}

impl From<AuthError> for EdgeError {
    fn from(e: AuthError) -> EdgeError {
        match e {
            AuthError::InvalidRequest(errors) => EdgeError::InvalidBody {
                detail: "one or more fields are invalid".into(),
                errors,
            },
            AuthError::RateLimited { retry_after_secs } => {
                EdgeError::RateLimited { retry_after_secs }
            }
            other => EdgeError::Auth(other),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
/// An RFC 9457 problem document.
pub struct Problem {
    /// A URI identifying the problem type (`urn:portcullis:problem:<code>`).
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What happened in this case.
    pub detail: String,
    /// The request id (also in `X-Request-Id`).
    pub request_id: String,
    /// Per-field validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ValidationError>,
}

#[derive(Serialize, utoipa::ToSchema)]
/// One field's validation error.
pub struct ValidationError {
    /// Field name in the request body.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

const REALM: &str = "Bearer realm=\"portcullis\"";

struct Mapped {
    status: u16,
    code: &'static str,
    title: &'static str,
    detail: String,
    headers: Vec<(&'static str, String)>,
    errors: Vec<FieldError>,
}

fn mapped(
    status: u16,
    code: &'static str,
    title: &'static str,
    detail: impl Into<String>,
) -> Mapped {
    Mapped {
        status,
        code,
        title,
        detail: detail.into(),
        headers: Vec::new(),
        errors: Vec::new(),
    }
}

impl Mapped {
    fn header(mut self, name: &'static str, value: String) -> Mapped {
        self.headers.push((name, value));
        self
    }
}

fn rate_limited(retry_after_secs: u64) -> Mapped {
    mapped(
        429,
        "rate_limited",
        "Too many requests",
        "too many requests from this address; slow down",
    )
    .header("Retry-After", retry_after_secs.to_string())
}

fn map(err: EdgeError, request_id: &str) -> Mapped {
    match err {
        EdgeError::Auth(e) => match e {
            AuthError::InvalidRequest(errors) => Mapped {
                errors,
                ..mapped(
                    400,
                    "invalid_request",
                    "Invalid request",
                    "one or more fields are invalid",
                )
            },
            AuthError::InvalidCredentials => mapped(
                401,
                "invalid_credentials",
                "Invalid credentials",
                "the email or password is wrong",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::RateLimited { retry_after_secs } => rate_limited(retry_after_secs),
            AuthError::TooManyAttempts { retry_after_secs } => mapped(
                429,
                "too_many_attempts",
                "Too many attempts",
                "too many failed login attempts; the account is temporarily locked",
            )
            .header("Retry-After", retry_after_secs.to_string()),
            AuthError::TooManyRequests { retry_after_secs } => mapped(
                429,
                "too_many_requests",
                "Too many requests",
                "too many requests for this account or address; retry later",
            )
            .header("Retry-After", retry_after_secs.to_string()),
            AuthError::WeakPassword { field, reason } => Mapped {
                errors: vec![FieldError {
                    field,
                    message: reason.to_owned(),
                }],
                ..mapped(
                    400,
                    "weak_password",
                    "Weak password",
                    format!("the password {reason}"),
                )
            },
            AuthError::EmailTaken => mapped(
                409,
                "email_taken",
                "Email already registered",
                "an account with this email address already exists",
            ),
            AuthError::InvalidToken => mapped(
                400,
                "invalid_token",
                "Invalid token",
                "the token is invalid, expired, already used or for another purpose",
            ),
            AuthError::InvalidMfa => mapped(
                401,
                "invalid_mfa",
                "Invalid second factor",
                "the code is wrong or was already used, or the mfa_token is invalid or expired",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::InvalidMfaCode => mapped(
                400,
                "invalid_mfa",
                "Invalid code",
                "the code is wrong or was already used, or no authenticator is enrolled",
            ),
            AuthError::MfaAlreadyEnabled => mapped(
                409,
                "mfa_already_enabled",
                "MFA already enabled",
                "TOTP is on already; disable it first to enroll another authenticator",
            ),
            AuthError::AlreadyVerified => mapped(
                409,
                "already_verified",
                "Already verified",
                "this email address is verified already",
            ),
            AuthError::InvalidGrant => mapped(
                401,
                "invalid_grant",
                "Invalid refresh token",
                "the refresh token is invalid, expired, revoked or was already used",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::Unauthenticated(TokenProblem::Missing) => mapped(
                401,
                "missing_token",
                "Authentication required",
                "send an access token as Authorization: Bearer <token>",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::Unauthenticated(p) => {
                let detail = p.to_string();
                mapped(401, "invalid_token", "Invalid access token", detail.clone()).header(
                    "WWW-Authenticate",
                    format!("{REALM}, error=\"invalid_token\", error_description=\"{detail}\""),
                )
            }
            AuthError::NotFound => mapped(404, "not_found", "Not found", "no such resource"),
            AuthError::Overloaded { retry_after_secs } => mapped(
                503,
                "overloaded",
                "Overloaded",
                "the server is at capacity; retry shortly",
            )
            .header("Retry-After", retry_after_secs.to_string()),
            AuthError::Unavailable { retry_after_secs } => mapped(
                503,
                "unavailable",
                "Service unavailable",
                "a backend is temporarily unavailable; retry shortly",
            )
            .header("Retry-After", retry_after_secs.to_string()),
            AuthError::UnknownProvider => mapped(
                404,
                "unknown_provider",
                "Unknown provider",
                "no sign-in provider of this name is configured",
            ),
            AuthError::InvalidState => mapped(
                400,
                "invalid_state",
                "Invalid sign-in state",
                "the sign-in is unknown, expired or already finished; start again",
            ),
            AuthError::InvalidIdToken => mapped(
                401,
                "invalid_id_token",
                "Invalid ID token",
                "the ID token does not verify, is expired or was already used",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::AccountExists => mapped(
                409,
                "account_exists",
                "Account exists",
                "an account with this email exists; sign in to it and link the provider",
            ),
            AuthError::InvalidPasskey => mapped(
                401,
                "invalid_passkey",
                "Invalid passkey",
                "the passkey's answer was refused, or its challenge is unknown, used or expired",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::InvalidPasskeyRegistration => mapped(
                400,
                "invalid_passkey",
                "Invalid passkey",
                "the passkey could not be registered: its answer was refused, or its challenge is unknown, used or expired",
            ),
            AuthError::LastSignInMethod => mapped(
                409,
                "last_sign_in_method",
                "Last sign-in method",
                "the account would be left with no way to sign in",
            ),
            AuthError::EmailNotVerified => mapped(
                403,
                "email_not_verified",
                "Email not verified",
                "verify the account's email address before linking a provider",
            ),
            AuthError::ReauthenticationRequired => mapped(
                401,
                "reauthentication_required",
                "Sign in again",
                "this needs a sign-in from the last few minutes; sign in again and retry",
            )
            .header("WWW-Authenticate", REALM.into()),
            AuthError::IdentityExists => mapped(
                409,
                "identity_exists",
                "Identity exists",
                "another account of this provider is linked already; unlink it first",
            ),
            AuthError::EmailRequired => mapped(
                400,
                "email_required",
                "Email required",
                "the provider did not share an email address; allow it and try again",
            ),
            AuthError::Internal(cause) => {
                tracing::error!(request_id, cause = %cause, "internal error");
                mapped(
                    500,
                    "internal",
                    "Internal error",
                    format!("an internal error occurred; quote request id {request_id}"),
                )
            }
        },
        EdgeError::Frame(f) => {
            let (code, title) = match f.status() {
                413 => ("payload_too_large", "Payload too large"),
                431 => ("header_fields_too_large", "Request header fields too large"),
                501 => ("not_implemented", "Not implemented"),
                417 => ("expectation_failed", "Expectation failed"),
                _ => ("bad_request", "Bad request"),
            };
            mapped(f.status(), code, title, f.detail())
        }
        EdgeError::Timeout => mapped(
            408,
            "request_timeout",
            "Request timeout",
            "the request did not arrive completely in time",
        ),
        EdgeError::NotFound => mapped(404, "not_found", "Not found", "no such endpoint"),
        EdgeError::MethodNotAllowed(allow) => mapped(
            405,
            "method_not_allowed",
            "Method not allowed",
            format!("this endpoint accepts {allow}"),
        )
        .header("Allow", allow.into()),
        EdgeError::UnsupportedMediaType(expected) => mapped(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            format!("the request body must be {expected}"),
        ),
        EdgeError::InvalidBody { detail, errors } => Mapped {
            errors,
            ..mapped(400, "invalid_request", "Invalid request", detail)
        },
        EdgeError::RateLimited { retry_after_secs } => rate_limited(retry_after_secs),
    }
}

/// The problem response for `err`.
pub fn problem(err: EdgeError, request_id: &str) -> Response {
    let mut m = map(err, request_id);
    // The contract: every 401 says how to authenticate. Each 401 above names
    // its own challenge; this catches one added without it.
    if m.status == 401
        && !m
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
    {
        m.headers.push(("WWW-Authenticate", REALM.into()));
    }
    let doc = Problem {
        kind: format!("urn:portcullis:problem:{}", m.code),
        title: m.title,
        status: m.status,
        code: m.code,
        detail: m.detail,
        request_id: request_id.to_owned(),
        errors: m
            .errors
            .into_iter()
            .map(|e| ValidationError {
                field: e.field.to_owned(),
                message: e.message,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&doc).unwrap_or_else(|_| b"{}".to_vec());
    let mut rsp = Response::json(m.status, body);
    rsp.content_type = Some(PROBLEM_JSON);
    for (name, value) in m.headers {
        rsp = rsp.with_header(name, value);
    }
    rsp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of each error the API can answer.
    fn every_error() -> Vec<EdgeError> {
        let auth = vec![
            AuthError::InvalidRequest(Vec::new()),
            AuthError::InvalidCredentials,
            AuthError::TooManyAttempts {
                retry_after_secs: 1,
            },
            AuthError::RateLimited {
                retry_after_secs: 1,
            },
            AuthError::TooManyRequests {
                retry_after_secs: 1,
            },
            AuthError::WeakPassword {
                field: "password",
                reason: "x",
            },
            AuthError::EmailTaken,
            AuthError::InvalidToken,
            AuthError::InvalidMfa,
            AuthError::InvalidMfaCode,
            AuthError::MfaAlreadyEnabled,
            AuthError::AlreadyVerified,
            AuthError::InvalidGrant,
            AuthError::Unauthenticated(TokenProblem::Missing),
            AuthError::Unauthenticated(TokenProblem::Invalid),
            AuthError::Unauthenticated(TokenProblem::Expired),
            AuthError::Unauthenticated(TokenProblem::Revoked),
            AuthError::NotFound,
            AuthError::Overloaded {
                retry_after_secs: 1,
            },
            AuthError::Unavailable {
                retry_after_secs: 1,
            },
            AuthError::UnknownProvider,
            AuthError::InvalidState,
            AuthError::InvalidIdToken,
            AuthError::AccountExists,
            AuthError::LastSignInMethod,
            AuthError::InvalidPasskey,
            AuthError::InvalidPasskeyRegistration,
            AuthError::EmailRequired,
            AuthError::EmailNotVerified,
            AuthError::ReauthenticationRequired,
            AuthError::IdentityExists,
            AuthError::Internal("test".into()),
        ];
        // A new variant does not compile here until it is listed above.
        for e in &auth {
            match e {
                AuthError::InvalidRequest(_)
                | AuthError::InvalidCredentials
                | AuthError::TooManyAttempts { .. }
                | AuthError::RateLimited { .. }
                | AuthError::TooManyRequests { .. }
                | AuthError::WeakPassword { .. }
                | AuthError::EmailTaken
                | AuthError::InvalidToken
                | AuthError::InvalidMfa
                | AuthError::InvalidMfaCode
                | AuthError::MfaAlreadyEnabled
                | AuthError::AlreadyVerified
                | AuthError::InvalidGrant
                | AuthError::NotFound
                | AuthError::Overloaded { .. }
                | AuthError::Unavailable { .. }
                | AuthError::UnknownProvider
                | AuthError::InvalidState
                | AuthError::InvalidIdToken
                | AuthError::AccountExists
                | AuthError::LastSignInMethod
                | AuthError::InvalidPasskey
                | AuthError::InvalidPasskeyRegistration
                | AuthError::EmailRequired
                | AuthError::EmailNotVerified
                | AuthError::ReauthenticationRequired
                | AuthError::IdentityExists
                | AuthError::Internal(_) => {}
                AuthError::Unauthenticated(
                    TokenProblem::Missing
                    | TokenProblem::Invalid
                    | TokenProblem::Expired
                    | TokenProblem::Revoked,
                ) => {}
            }
        }
        let mut all: Vec<EdgeError> = auth.into_iter().map(EdgeError::Auth).collect();
        all.extend([
            EdgeError::Frame(FrameError::BodyTooLarge),
            EdgeError::Timeout,
            EdgeError::NotFound,
            EdgeError::MethodNotAllowed("GET"),
            EdgeError::UnsupportedMediaType("application/json"),
            EdgeError::InvalidBody {
                detail: "x".into(),
                errors: Vec::new(),
            },
            EdgeError::RateLimited {
                retry_after_secs: 1,
            },
        ]);
        all
    }

    #[test]
    fn every_401_carries_www_authenticate() {
        let mut codes = Vec::new();
        for e in every_error() {
            let name = format!("{e:?}");
            let r = problem(e, "rid");
            if r.status == 401 {
                let challenge = r.header("www-authenticate").unwrap_or_default();
                assert!(
                    challenge.starts_with("Bearer realm="),
                    "{name}: {challenge:?}"
                );
                let body = match &r.body {
                    crate::server::Body::Owned(b) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("{name}: {other:?}"),
                };
                codes.push(body);
            }
            if matches!(r.status, 429 | 503) {
                assert!(r.header("retry-after").is_some(), "{name}");
            }
        }
        let codes = codes.join(" ");
        for code in [
            "invalid_credentials",
            "invalid_mfa",
            "invalid_grant",
            "missing_token",
            "invalid_token",
        ] {
            assert!(codes.contains(&format!("\"code\":\"{code}\"")), "{code}");
        }
    }
}
