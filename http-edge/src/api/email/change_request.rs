//! `POST /v1/email/change`: ask to move the signed-in user's account to a
//! new address.

use portcullis_engine::domain::{Email, Password};
use portcullis_engine::ops::email::RequestEmailChange;
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

/// `POST /v1/email/change`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/email/change",
    handler: request_email_change,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(request_email_change))]
struct Doc;

/// `POST /v1/email/change`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChangeRequest {
    /// The new sign-in address.
    pub new_email: String,
    /// The current password (re-verified; wrong ones count toward the lockout).
    #[schema(value_type = String)]
    pub password: Zeroizing<String>,
}

impl EmailChangeRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("new_email"), required("password")];
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
    call(
        app,
        RequestEmailChange {
            bearer: token,
            new_email,
            password,
            client: app.client(req),
        },
    )?;
    Ok(Response::empty(202))
}
