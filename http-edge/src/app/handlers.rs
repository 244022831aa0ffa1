//! One function per endpoint: read and validate the request, hand the
//! engine a command, shape its answer. The `utoipa::path` attributes make the
//! served OpenAPI document.

#![allow(clippy::unnecessary_wraps)]

use std::collections::BTreeMap;

use portcullis_engine::domain::{self, Email, FieldError, Password};
use portcullis_engine::{AuthError, Bearer, Command, Outcome, Patch, ProfilePatch, TokenHint};
use zeroize::Zeroizing;

use super::{App, json};
use crate::dto::*;
use crate::json as body;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Body, Request, Response};

fn call(app: &App, cmd: Command) -> Result<Outcome, EdgeError> {
    app.bridge.call(cmd).map_err(EdgeError::from)
}

fn unexpected(o: Outcome) -> EdgeError {
    EdgeError::Auth(AuthError::Internal(format!(
        "unexpected engine answer {o:?}"
    )))
}

fn limit(app: &App, req: &Request<'_>, route: Limited) -> Result<(), EdgeError> {
    app.limits
        .check(route, app.client_ip(req))
        .map_err(|retry_after_secs| {
            metrics::counter!(crate::telemetry::HTTP_RATE_LIMITED_TOTAL).increment(1);
            EdgeError::RateLimited { retry_after_secs }
        })
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(req: &Request<'_>) -> Bearer {
    let v = std::str::from_utf8(req.header("authorization")?).ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

fn validation(errors: Vec<FieldError>) -> EdgeError {
    EdgeError::InvalidBody {
        detail: "one or more fields are invalid".into(),
        errors,
    }
}

/// Validates an email and a password together, reporting both fields' problems.
fn credentials(
    email: &str,
    password: Zeroizing<String>,
    mut errors: Vec<FieldError>,
) -> Result<(Email, Password), EdgeError> {
    let email = Email::parse("email", email)
        .map_err(|e| errors.push(e))
        .ok();
    let password = Password::parse("password", password)
        .map_err(|e| errors.push(e))
        .ok();
    match (email, password) {
        (Some(e), Some(p)) if errors.is_empty() => Ok((e, p)),
        _ => Err(validation(errors)),
    }
}

fn tokens_response(status: u16, outcome: Outcome) -> Result<Response, EdgeError> {
    match outcome {
        Outcome::Granted(g) => json(status, &TokenResponse::from(&g)),
        other => Err(unexpected(other)),
    }
}

fn done(outcome: Outcome) -> Result<Response, EdgeError> {
    match outcome {
        Outcome::Done => Ok(Response::empty(204)),
        other => Err(unexpected(other)),
    }
}

/// Create an account and sign in.
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; its first session's tokens", body = RegisterResponse),
        (status = 400, description = "Invalid request (`invalid_request`), or a common password or one containing the address's name (`weak_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered (`email_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Hash pool saturated (`overloaded`) or backend down (`unavailable`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn register(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Register)?;
    let b: RegisterRequest = body::parse(req, RegisterRequest::FIELDS)?;
    let mut errors = Vec::new();
    let name = match b.name.as_deref() {
        None => None,
        Some(n) => domain::parse_name("name", n)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    let (email, password) = credentials(&b.email, b.password, errors)?;
    match call(
        app,
        Command::Register {
            email,
            password,
            name,
            client: app.client(req),
        },
    )? {
        Outcome::Registered { user, grant } => json(
            201,
            &RegisterResponse {
                user: User::from(&*user),
                tokens: TokenResponse::from(&grant),
            },
        ),
        other => Err(unexpected(other)),
    }
}

/// Sign in with email and password.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in (with a `device_token` to send with the next logins), or (TOTP on) `{mfa_required: true, mfa_token, expires_in}`: finish at /v1/auth/login/mfa", body = TokenResponse),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password, the same for unknown emails (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated failures (`too_many_attempts`): this client's address for this account, this device token, or (without a valid device token) the account after many failures from anywhere; or the per-IP limit (`rate_limited`); with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn login(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let b: LoginRequest = body::parse(req, LoginRequest::FIELDS)?;
    let (email, password) = credentials(&b.email, b.password, Vec::new())?;
    match call(
        app,
        Command::Login {
            email,
            password,
            device_token: b.device_token,
            client: app.client(req),
        },
    )? {
        Outcome::MfaRequired {
            mfa_token,
            expires_in,
        } => json(
            200,
            &MfaRequiredResponse {
                mfa_required: true,
                mfa_token: mfa_token.expose().to_owned(),
                expires_in,
            },
        ),
        other => tokens_response(200, other),
    }
}

/// The second step of a login with TOTP on.
#[utoipa::path(
    post, path = "/v1/auth/login/mfa", tag = "auth",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Signed in (`amr`: pwd+otp, or pwd+mfa for a recovery code), with a `device_token`", body = TokenResponse),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong or replayed code, used recovery code, or invalid/expired `mfa_token` (`invalid_mfa`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The second step is locked after repeated wrong codes, whatever the password does; the `mfa_token` that saw them is dead (`too_many_attempts`); or the per-IP limit (`rate_limited`); with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn login_mfa(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let b: LoginMfaRequest = body::parse(req, LoginMfaRequest::FIELDS)?;
    tokens_response(
        200,
        call(
            app,
            Command::LoginMfa {
                mfa_token: b.mfa_token,
                code: b.code,
                client: app.client(req),
            },
        )?,
    )
}

/// Start a TOTP enrollment: a new secret, not active until confirmed.
#[utoipa::path(
    post, path = "/v1/mfa/totp/enroll", tag = "mfa", security(("bearer" = [])),
    request_body = TotpEnrollRequest,
    responses(
        (status = 200, description = "The secret and its otpauth:// URI (replaces an unconfirmed enrollment)", body = TotpEnrollResponse),
        (status = 400, description = "Invalid body (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong password (`invalid_credentials`, counted toward the lockout), or `missing_token` / `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is on already (`mfa_already_enabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong passwords (`too_many_attempts`), per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn enroll_totp(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let token = authenticated(req)?;
    let b: TotpEnrollRequest = body::parse(req, TotpEnrollRequest::FIELDS)?;
    let password = Password::parse("password", b.password).map_err(|e| validation(vec![e]))?;
    match call(
        app,
        Command::EnrollTotp {
            bearer: token,
            password,
            client: app.client(req),
        },
    )? {
        Outcome::TotpEnrollment {
            secret,
            otpauth_uri,
        } => json(
            200,
            &TotpEnrollResponse {
                secret: secret.expose().to_owned(),
                otpauth_uri: otpauth_uri.expose().to_owned(),
            },
        ),
        other => Err(unexpected(other)),
    }
}

/// Confirm the enrollment with a code: TOTP is on.
#[utoipa::path(
    post, path = "/v1/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = MfaCodeRequest,
    responses(
        (status = 200, description = "TOTP is on; ten single-use recovery codes, shown only now", body = RecoveryCodesResponse),
        (status = 400, description = "Wrong code or nothing enrolled (`invalid_mfa`), or an invalid body (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is on already (`mfa_already_enabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong codes (`too_many_attempts`), per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn confirm_totp(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let token = authenticated(req)?;
    let b: MfaCodeRequest = body::parse(req, MfaCodeRequest::FIELDS)?;
    match call(
        app,
        Command::ConfirmTotp {
            bearer: token,
            code: b.code,
            client: app.client(req),
        },
    )? {
        Outcome::RecoveryCodes(codes) => json(
            200,
            &RecoveryCodesResponse {
                recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
            },
        ),
        other => Err(unexpected(other)),
    }
}

/// Turn TOTP off.
#[utoipa::path(
    post, path = "/v1/mfa/totp/disable", tag = "mfa", security(("bearer" = [])),
    request_body = TotpDisableRequest,
    responses(
        (status = 204, description = "TOTP is off; the secret and recovery codes are deleted, pending links are void, and a notice is mailed"),
        (status = 400, description = "Wrong code, or TOTP not on (`invalid_mfa`), or an invalid body (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong password (`invalid_credentials`, counted toward the lockout), or `missing_token` / `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong passwords or codes (`too_many_attempts`), per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn disable_totp(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let token = authenticated(req)?;
    let b: TotpDisableRequest = body::parse(req, TotpDisableRequest::FIELDS)?;
    let password = Password::parse("password", b.password).map_err(|e| validation(vec![e]))?;
    done(call(
        app,
        Command::DisableTotp {
            bearer: token,
            code: b.code,
            password,
            client: app.client(req),
        },
    )?)
}

/// The bearer token, or 401 `missing_token` before the body is read.
fn authenticated(req: &Request<'_>) -> Result<Bearer, EdgeError> {
    match bearer(req) {
        Some(t) => Ok(Some(t)),
        None => Err(EdgeError::Auth(AuthError::Unauthenticated(
            portcullis_engine::TokenProblem::Missing,
        ))),
    }
}

/// Rotate a refresh token: the old one stops working, a new pair is issued.
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens (the refresh token is rotated)", body = TokenResponse),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Expired, revoked, unknown or reused token (`invalid_grant`); reuse revokes the session", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn refresh(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Refresh)?;
    let b: RefreshRequest = body::parse(req, RefreshRequest::FIELDS)?;
    tokens_response(
        200,
        call(
            app,
            Command::Refresh {
                refresh_token: b.refresh_token,
                client: app.client(req),
            },
        )?,
    )
}

/// End the current session.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked; its tokens stop working at once"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn logout(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    done(call(
        app,
        Command::Logout {
            bearer: bearer(req),
        },
    )?)
}

/// End every session of the user.
#[utoipa::path(
    post, path = "/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the user is revoked"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn logout_all(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    done(call(
        app,
        Command::LogoutAll {
            bearer: bearer(req),
        },
    )?)
}

fn user_response(outcome: Outcome) -> Result<Response, EdgeError> {
    match outcome {
        Outcome::User(u) => json(200, &User::from(&*u)),
        other => Err(unexpected(other)),
    }
}

/// Mail a verification link to the signed-in user's address.
#[utoipa::path(
    post, path = "/v1/email/verification", tag = "email", security(("bearer" = [])),
    responses(
        (status = 202, description = "A link carrying a single-use token (valid 24 h) is queued for the user's address; an earlier link stops working"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The address is verified already (`already_verified`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Mail limit of the account or the address (`too_many_requests`: by default one a minute and ten a day) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn request_email_verification(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    accepted(call(
        app,
        Command::RequestEmailVerification {
            bearer: bearer(req),
            client: app.client(req),
        },
    )?)
}

/// Confirm an email address with the mailed token.
#[utoipa::path(
    post, path = "/v1/email/verification/confirm", tag = "email",
    request_body = ConfirmTokenRequest,
    responses(
        (status = 200, description = "Verified: the user, with `email_verified: true`; the token is used up", body = User),
        (status = 400, description = "Malformed body (`invalid_request`), or a token that is unknown, expired, used or of another flow (`invalid_token`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn confirm_email_verification(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::TokenConfirm)?;
    let b: ConfirmTokenRequest = body::parse(req, ConfirmTokenRequest::FIELDS)?;
    user_response(call(
        app,
        Command::ConfirmEmailVerification { token: b.token },
    )?)
}

/// Mail a password reset link, if the address has an account.
#[utoipa::path(
    post, path = "/v1/password/forgot", tag = "password",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Always, at once, whether or not the address has an account; if it has, a link carrying a single-use token (valid 30 min) is queued for it"),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Mail limit of the address (`too_many_requests`: by default one a minute and ten a day, the same whether or not it has an account) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn forgot_password(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::PasswordForgot)?;
    let b: ForgotPasswordRequest = body::parse(req, ForgotPasswordRequest::FIELDS)?;
    let email = Email::parse("email", &b.email).map_err(|e| validation(vec![e]))?;
    accepted(call(
        app,
        Command::ForgotPassword {
            email,
            client: app.client(req),
        },
    )?)
}

/// Set a new password with the mailed reset token.
#[utoipa::path(
    post, path = "/v1/password/reset", tag = "password",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "The password is changed; every session is signed out, the login lockout cleared, and a notice mailed; the token is used up"),
        (status = 400, description = "Invalid body or password (`invalid_request`), a common password or one containing the address's name (`weak_password`), or a token that is unknown, expired, used or of another flow (`invalid_token`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn reset_password(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::TokenConfirm)?;
    let b: ResetPasswordRequest = body::parse(req, ResetPasswordRequest::FIELDS)?;
    let new_password =
        Password::parse("new_password", b.new_password).map_err(|e| validation(vec![e]))?;
    done(call(
        app,
        Command::ResetPassword {
            token: b.token,
            new_password,
            client: app.client(req),
        },
    )?)
}

/// Change the signed-in user's password.
#[utoipa::path(
    post, path = "/v1/password/change", tag = "password", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session is signed out, pending links are void, and a notice mailed"),
        (status = 400, description = "Invalid body or password (`invalid_request`), or a common password or one containing the address's name (`weak_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong current password (`invalid_credentials`), or `missing_token` / `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong passwords (`too_many_attempts`), per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn change_password(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let token = authenticated(req)?;
    let b: ChangePasswordRequest = body::parse(req, ChangePasswordRequest::FIELDS)?;
    let mut errors = Vec::new();
    let current = Password::parse("current_password", b.current_password)
        .map_err(|e| errors.push(e))
        .ok();
    let new = Password::parse("new_password", b.new_password)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(current_password), Some(new_password)) = (current, new) else {
        return Err(validation(errors));
    };
    done(call(
        app,
        Command::ChangePassword {
            bearer: token,
            current_password,
            new_password,
            client: app.client(req),
        },
    )?)
}

/// Ask to move the signed-in user's account to a new address.
#[utoipa::path(
    post, path = "/v1/email/change", tag = "email", security(("bearer" = [])),
    request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "A link carrying a single-use token (valid 24 h) is queued for the new address; nothing changes until it is confirmed"),
        (status = 400, description = "Invalid body, address or password, or the current address (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong password (`invalid_credentials`), or `missing_token` / `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new address belongs to another account (`email_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong passwords (`too_many_attempts`), mail or per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn request_email_change(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let token = authenticated(req)?;
    let b: EmailChangeRequest = body::parse(req, EmailChangeRequest::FIELDS)?;
    let mut errors = Vec::new();
    let new_email = Email::parse("new_email", &b.new_email)
        .map_err(|e| errors.push(e))
        .ok();
    let password = Password::parse("password", b.password)
        .map_err(|e| errors.push(e))
        .ok();
    let (Some(new_email), Some(password)) = (new_email, password) else {
        return Err(validation(errors));
    };
    accepted(call(
        app,
        Command::RequestEmailChange {
            bearer: token,
            new_email,
            password,
            client: app.client(req),
        },
    )?)
}

/// Confirm an email change with the token mailed to the new address.
#[utoipa::path(
    post, path = "/v1/email/change/confirm", tag = "email",
    request_body = ConfirmTokenRequest,
    responses(
        (status = 200, description = "The account's address is the new one (verified by the link); the old address is told; the token is used up", body = User),
        (status = 400, description = "Malformed body (`invalid_request`), or a token that is unknown, expired, used or of another flow (`invalid_token`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The new address was taken in the meantime (`email_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn confirm_email_change(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::TokenConfirm)?;
    let b: ConfirmTokenRequest = body::parse(req, ConfirmTokenRequest::FIELDS)?;
    user_response(call(app, Command::ConfirmEmailChange { token: b.token })?)
}

fn accepted(outcome: Outcome) -> Result<Response, EdgeError> {
    match outcome {
        Outcome::Accepted => Ok(Response::empty(202)),
        other => Err(unexpected(other)),
    }
}

/// The signed-in user.
#[utoipa::path(
    get, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "`missing_token` or `invalid_token` (also when the session was logged out)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn me(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    user_response(call(
        app,
        Command::Me {
            bearer: bearer(req),
        },
    )?)
}

/// Change the signed-in user's profile.
#[utoipa::path(
    patch, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn update_me(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let token = bearer(req);
    if token.is_none() {
        return Err(EdgeError::Auth(AuthError::Unauthenticated(
            portcullis_engine::TokenProblem::Missing,
        )));
    }
    let b: UpdateMeRequest = body::parse(req, UpdateMeRequest::FIELDS)?;
    let mut errors = Vec::new();
    let name = match b.name {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(n)) => domain::parse_name("name", &n).map_or_else(
            |e| {
                errors.push(e);
                Patch::Keep
            },
            Patch::Set,
        ),
    };
    let picture_url = match b.picture_url {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(u)) => domain::parse_picture_url("picture_url", &u).map_or_else(
            |e| {
                errors.push(e);
                Patch::Keep
            },
            Patch::Set,
        ),
    };
    if !errors.is_empty() {
        return Err(validation(errors));
    }
    user_response(call(
        app,
        Command::UpdateMe {
            bearer: token,
            patch: ProfilePatch { name, picture_url },
        },
    )?)
}

/// The user's live sessions.
#[utoipa::path(
    get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions, oldest first", body = SessionsResponse),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn list_sessions(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    match call(
        app,
        Command::ListSessions {
            bearer: bearer(req),
        },
    )? {
        Outcome::Sessions(list) => json(
            200,
            &SessionsResponse {
                sessions: list.iter().map(Session::from).collect(),
            },
        ),
        other => Err(unexpected(other)),
    }
}

/// End one of the user's sessions.
#[utoipa::path(
    delete, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of this user (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn delete_session(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let id = super::routes::path_param("/v1/sessions/{id}", req.path).to_owned();
    done(call(
        app,
        Command::DeleteSession {
            bearer: bearer(req),
            session_id: id,
        },
    )?)
}

/// Reads `token` and `token_type_hint` from a JSON or form body.
fn token_request(req: &Request<'_>) -> Result<(Zeroizing<String>, Option<TokenHint>), EdgeError> {
    let (token, hint) =
        if body::media_type(req).as_deref() == Some("application/x-www-form-urlencoded") {
            let mut token = None;
            let mut hint = None;
            for (k, v) in form_urlencoded::parse(req.body) {
                // RFC 6749 3.1: a parameter must not be included more than once
                // (a proxy and the server must never read different values).
                let twice = |field: &'static str| {
                    validation(vec![FieldError {
                        field,
                        message: "is given more than once".into(),
                    }])
                };
                match &*k {
                    "token" if token.is_some() => return Err(twice("token")),
                    "token_type_hint" if hint.is_some() => return Err(twice("token_type_hint")),
                    "token" => token = Some(Zeroizing::new(v.into_owned())),
                    "token_type_hint" => hint = Some(v.into_owned()),
                    _ => {}
                }
            }
            let token = token.ok_or_else(|| {
                validation(vec![FieldError {
                    field: "token",
                    message: "is required".into(),
                }])
            })?;
            (token, hint)
        } else {
            let b: TokenRequest = body::parse(req, TokenRequest::FIELDS)?;
            (b.token, b.token_type_hint)
        };
    let hint = match hint.as_deref() {
        Some("access_token") => Some(TokenHint::AccessToken),
        Some("refresh_token") => Some(TokenHint::RefreshToken),
        // RFC 7009 §2.1: an unknown hint is ignored.
        _ => None,
    };
    Ok((token, hint))
}

/// RFC 7662 token introspection.
#[utoipa::path(
    post, path = "/v1/oauth/introspect", tag = "oauth",
    request_body(content = TokenRequest, description = "JSON, or `application/x-www-form-urlencoded` with the same fields"),
    responses(
        (status = 200, description = "`active` is false for anything that is not a live token", body = IntrospectionResponse),
        (status = 400, description = "No token given, or a parameter given twice (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn introspect(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Introspection)?;
    let (token, hint) = token_request(req)?;
    match call(app, Command::Introspect { token, hint })? {
        Outcome::Introspection(i) => json(200, &IntrospectionResponse::from(&i)),
        other => Err(unexpected(other)),
    }
}

/// RFC 7009 token revocation: revoking either token of a session ends the session.
#[utoipa::path(
    post, path = "/v1/oauth/revoke", tag = "oauth",
    request_body(content = TokenRequest, description = "JSON, or `application/x-www-form-urlencoded` with the same fields"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 answers 200 either way)"),
        (status = 400, description = "No token given, or a parameter given twice (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn revoke(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Introspection)?;
    let (token, hint) = token_request(req)?;
    match call(app, Command::Revoke { token, hint })? {
        Outcome::Done => Ok(Response::empty(200)),
        other => Err(unexpected(other)),
    }
}

/// The public keys that verify access tokens, including the next key before it signs.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "JWK set", body = JwkSet))
)]
pub fn jwks(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    match call(app, Command::Jwks)? {
        Outcome::Jwks(bytes) => {
            let mut r = Response::json(200, Vec::new());
            r.body = Body::Shared(bytes);
            Ok(r.with_header("Cache-Control", "public, max-age=300"))
        }
        other => Err(unexpected(other)),
    }
}

/// Issuer metadata.
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "Issuer metadata", body = Discovery))
)]
pub fn discovery(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    let mut r = Response::json(200, Vec::new());
    r.body = Body::Shared(app.docs.discovery.clone());
    Ok(r.with_header("Cache-Control", "public, max-age=3600"))
}

/// Liveness: the process serves requests.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Alive", body = Health),
        (status = 503, description = "A store failed beyond repair (e.g. an fsync error): restart the process", body = Health),
    )
)]
pub fn healthz(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    liveness(&app.bridge)
}

/// The liveness answer (shared with the admin listener): 503 once a store is
/// broken beyond repair, so the orchestrator restarts the process.
pub fn liveness(bridge: &crate::bridge::Bridge) -> Result<Response, EdgeError> {
    if bridge.engine().is_alive() {
        json(200, &Health { status: "ok" })
    } else {
        Ok(json(503, &Health { status: "failed" })?.with_header("Retry-After", "1"))
    }
}

/// Readiness: stores reachable, signing keys loaded, not shutting down.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `checks` says which dependency", body = Readiness),
    )
)]
pub fn readyz(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    readiness(&app.bridge, false)
}

/// The readiness answer (shared with the admin listener). Only the admin
/// listener (`cluster_detail`) tells how many database nodes are down: on
/// the public port that would tell anyone when the cluster is one failure
/// from refusing logins.
pub fn readiness(
    bridge: &crate::bridge::Bridge,
    cluster_detail: bool,
) -> Result<Response, EdgeError> {
    match bridge.call(Command::Readiness) {
        Ok(Outcome::Readiness(checks, mut nodes)) => {
            if !cluster_detail {
                nodes.clear();
            }
            let ready = checks.iter().all(|c| c.ok);
            let degraded = nodes.iter().any(|(_, n)| n.down > 0);
            let doc = Readiness {
                status: match (ready, degraded) {
                    (false, _) => "not_ready",
                    (true, true) => "degraded",
                    (true, false) => "ready",
                },
                checks: checks
                    .iter()
                    .map(|c| (c.name, c.ok))
                    .collect::<BTreeMap<_, _>>(),
                nodes: nodes
                    .iter()
                    .map(|(name, n)| {
                        (
                            *name,
                            crate::dto::Nodes {
                                up: n.up,
                                down: n.down,
                            },
                        )
                    })
                    .collect(),
            };
            let r = json(if ready { 200 } else { 503 }, &doc)?;
            Ok(if ready {
                r
            } else {
                r.with_header("Retry-After", "1")
            })
        }
        Ok(other) => Err(unexpected(other)),
        Err(_) => Ok(json(
            503,
            &Readiness {
                status: "not_ready",
                checks: BTreeMap::from([("engine", false)]),
                nodes: BTreeMap::new(),
            },
        )?
        .with_header("Retry-After", "1")),
    }
}

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 description of this API"))
)]
pub fn openapi(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    let mut r = Response::json(200, Vec::new());
    r.body = Body::Shared(app.docs.openapi.clone());
    Ok(r)
}
