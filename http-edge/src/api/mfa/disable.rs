//! `POST /v1/mfa/totp/disable`: turn TOTP off.

use portcullis_engine::domain::Password;
use portcullis_engine::ops::mfa::DisableTotp;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{authenticated, call, limit, validation};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/mfa/totp/disable`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/mfa/totp/disable",
    handler: disable_totp,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(disable_totp))]
struct Doc;

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
    call(
        app,
        DisableTotp {
            bearer: token,
            code: b.code,
            password,
            client: app.client(req),
        },
    )?;
    Ok(Response::empty(204))
}
