//! `POST /v1/oauth/introspect`: RFC 7662 token introspection.

use portcullis_engine::Introspection;
use portcullis_engine::ops::oauth::Introspect;
use serde::Serialize;
use utoipa::ToSchema;

use super::{TokenRequest, token_request};
use crate::api::Endpoint;
use crate::api::support::{call, json, limit};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/oauth/introspect`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/oauth/introspect",
    handler: introspect,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(introspect))]
struct Doc;

/// RFC 7662 introspection answer.
#[derive(Serialize, ToSchema)]
pub struct IntrospectionResponse {
    /// Whether the token is live.
    pub active: bool,
    /// `access_token` or `refresh_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    /// User id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// Issued at (access tokens) or last refreshed (refresh tokens), Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// Issuer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Audience (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Token id (access tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

impl From<&Introspection> for IntrospectionResponse {
    fn from(i: &Introspection) -> IntrospectionResponse {
        match i {
            Introspection::Inactive => IntrospectionResponse {
                active: false,
                token_type: None,
                sub: None,
                sid: None,
                exp: None,
                iat: None,
                iss: None,
                aud: None,
                jti: None,
            },
            Introspection::Active {
                token_type,
                sub,
                sid,
                exp,
                iat,
                iss,
                aud,
                jti,
            } => IntrospectionResponse {
                active: true,
                token_type: Some(token_type),
                sub: Some(sub.clone()),
                sid: Some(sid.clone()),
                exp: Some(*exp),
                iat: Some(*iat),
                iss: Some(iss.clone()),
                aud: aud.clone(),
                jti: jti.clone(),
            },
        }
    }
}

/// RFC 7662 token introspection.
#[utoipa::path(
    post, path = "/v1/oauth/introspect", tag = "oauth",
    request_body(content = TokenRequest, description = "JSON, or `application/x-www-form-urlencoded` with the same fields"),
    responses(
        (status = 200, description = "`active` is false for anything that is not a live token", body = IntrospectionResponse),
        (status = 400, description = "No token given, or a parameter given twice (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn introspect(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Introspection)?;
    let (token, hint) = token_request(req)?;
    let answer = call(app, Introspect { token, hint })?;
    json(200, &IntrospectionResponse::from(&answer))
}
