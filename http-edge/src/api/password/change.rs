//! `POST /v1/password/change`: change the signed-in user's password.

use portcullis_engine::domain::Password;
use portcullis_engine::ops::password::ChangePassword;
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

/// `POST /v1/password/change`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/password/change",
    handler: change_password,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(change_password))]
struct Doc;

/// `POST /v1/password/change`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    /// The current password (re-verified; wrong ones count toward the lockout).
    #[schema(value_type = String)]
    pub current_password: Zeroizing<String>,
    /// The new password: 8 to 1024 bytes of UTF-8, not trimmed.
    #[schema(value_type = String)]
    pub new_password: Zeroizing<String>,
}

impl ChangePasswordRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("current_password"), required("new_password")];
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
    call(
        app,
        ChangePassword {
            bearer: token,
            current_password,
            new_password,
            client: app.client(req),
        },
    )?;
    Ok(Response::empty(204))
}
