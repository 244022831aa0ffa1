//! `POST /v1/mfa/totp/enroll`: start a TOTP enrollment.

use portcullis_engine::domain::Password;
use portcullis_engine::ops::mfa::{EnrollTotp, TotpEnrollment};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{authenticated, call, json, limit, validation};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/mfa/totp/enroll`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/mfa/totp/enroll",
    handler: enroll_totp,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(enroll_totp))]
struct Doc;

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

/// `POST /v1/mfa/totp/enroll`.
#[derive(Serialize, ToSchema)]
pub struct TotpEnrollResponse {
    /// The secret, base32 (RFC 4648, no padding), for manual entry.
    pub secret: String,
    /// `otpauth://totp/...` for a QR code (SHA1, 6 digits, 30 s).
    pub otpauth_uri: String,
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
    let TotpEnrollment {
        secret,
        otpauth_uri,
    } = call(
        app,
        EnrollTotp {
            bearer: token,
            password,
            client: app.client(req),
        },
    )?;
    json(
        200,
        &TotpEnrollResponse {
            secret: secret.expose().to_owned(),
            otpauth_uri: otpauth_uri.expose().to_owned(),
        },
    )
}
