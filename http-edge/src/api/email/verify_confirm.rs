//! `POST /v1/email/verification/confirm`: confirm an address with the
//! mailed token.

use portcullis_engine::ops::email::ConfirmEmailVerification;

use crate::api::Endpoint;
use crate::api::support::{call, json, limit};
use crate::app::App;
use crate::dto::{ConfirmTokenRequest, User};
use crate::json as body;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/email/verification/confirm`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/email/verification/confirm",
    handler: confirm_email_verification,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(confirm_email_verification))]
struct Doc;

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
    let user = call(app, ConfirmEmailVerification { token: b.token })?;
    json(200, &User::from(&*user))
}
