//! `POST /v1/password/reset`: set a new password with the mailed token.

use portcullis_engine::domain::Password;
use portcullis_engine::ops::password::ResetPassword;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{call, limit, validation};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/password/reset`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/password/reset",
    handler: reset_password,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(reset_password))]
struct Doc;

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
    call(
        app,
        ResetPassword {
            token: b.token,
            new_password,
            client: app.client(req),
        },
    )?;
    Ok(Response::empty(204))
}
