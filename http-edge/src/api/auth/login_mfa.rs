//! `POST /v1/auth/login/mfa`: the second step of a login with TOTP on.

use portcullis_engine::ops::auth::LoginMfa;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{call, json, limit};
use crate::app::App;
use crate::dto::TokenResponse;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/auth/login/mfa`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/login/mfa",
    handler: login_mfa,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(login_mfa))]
struct Doc;

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
    let grant = call(
        app,
        LoginMfa {
            mfa_token: b.mfa_token,
            code: b.code,
            client: app.client(req),
        },
    )?;
    json(200, &TokenResponse::from(&grant))
}
