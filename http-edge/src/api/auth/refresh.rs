//! `POST /v1/auth/refresh`: rotate a refresh token.

use portcullis_engine::ops::auth::Refresh;
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

/// `POST /v1/auth/refresh`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/refresh",
    handler: refresh,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(refresh))]
struct Doc;

/// `POST /v1/auth/refresh`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The current refresh token of the session.
    #[schema(value_type = String)]
    pub refresh_token: Zeroizing<String>,
}

impl RefreshRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("refresh_token")];
}

/// Rotate a refresh token: the old one stops working, a new pair is issued.
#[utoipa::path(
    post, path = "/v1/auth/refresh", tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens (the refresh token is rotated)", body = TokenResponse),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Expired, revoked, unknown or reused token (`invalid_grant`); reuse revokes the session", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn refresh(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Refresh)?;
    let b: RefreshRequest = body::parse(req, RefreshRequest::FIELDS)?;
    let grant = call(
        app,
        Refresh {
            refresh_token: b.refresh_token,
            client: app.client(req),
        },
    )?;
    json(200, &TokenResponse::from(&grant))
}
