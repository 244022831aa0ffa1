//! `POST /v1/password/forgot`: mail a reset link, if the address has an
//! account.

use portcullis_engine::domain::Email;
use portcullis_engine::ops::password::ForgotPassword;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::{call, limit, validation};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/password/forgot`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/password/forgot",
    handler: forgot_password,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(forgot_password))]
struct Doc;

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
    call(
        app,
        ForgotPassword {
            email,
            client: app.client(req),
        },
    )?;
    Ok(Response::empty(202))
}
