//! `POST /v1/email/change/confirm`: confirm an email change with the token
//! mailed to the new address.

use portcullis_engine::ops::email::ConfirmEmailChange;

use crate::api::Endpoint;
use crate::api::support::{call, json, limit};
use crate::app::App;
use crate::dto::{ConfirmTokenRequest, User};
use crate::json as body;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/email/change/confirm`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/email/change/confirm",
    handler: confirm_email_change,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(confirm_email_change))]
struct Doc;

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
    let user = call(app, ConfirmEmailChange { token: b.token })?;
    json(200, &User::from(&*user))
}
