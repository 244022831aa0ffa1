//! `POST /v1/email/verification`: mail a verification link to the
//! signed-in user's address.

use portcullis_engine::ops::email::RequestEmailVerification;

use crate::api::Endpoint;
use crate::api::support::{bearer, call, limit};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/email/verification`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/email/verification",
    handler: request_email_verification,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(request_email_verification))]
struct Doc;

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
    call(
        app,
        RequestEmailVerification {
            bearer: bearer(req),
            client: app.client(req),
        },
    )?;
    Ok(Response::empty(202))
}
