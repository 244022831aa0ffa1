//! `POST /v1/oauth/revoke`: RFC 7009 token revocation.

use portcullis_engine::ops::oauth::Revoke;

use super::{TokenRequest, token_request};
use crate::api::Endpoint;
use crate::api::support::{call, limit};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/oauth/revoke`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/oauth/revoke",
    handler: revoke,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(revoke))]
struct Doc;

/// RFC 7009 token revocation: revoking either token of a session ends the session.
#[utoipa::path(
    post, path = "/v1/oauth/revoke", tag = "oauth",
    request_body(content = TokenRequest, description = "JSON, or `application/x-www-form-urlencoded` with the same fields"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (RFC 7009 answers 200 either way)"),
        (status = 400, description = "No token given, or a parameter given twice (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn revoke(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Introspection)?;
    let (token, hint) = token_request(req)?;
    call(app, Revoke { token, hint })?;
    Ok(Response::empty(200))
}
