//! `POST /v1/auth/register`: create an account and sign in.

use portcullis_engine::domain;
use portcullis_engine::ops::auth::{Register, Registered};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{call, credentials, json, limit};
use crate::app::App;
use crate::dto::{TokenResponse, User};
use crate::json::{self as body, Field, optional, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/auth/register`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/register",
    handler: register,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(register))]
struct Doc;

/// `POST /v1/auth/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Login email; trimmed and compared case-insensitively.
    #[schema(example = "ada@example.com", max_length = 254)]
    pub email: String,
    /// 8 to 1024 bytes of UTF-8, not trimmed.
    #[schema(value_type = String, min_length = 8, max_length = 1024, format = Password)]
    pub password: Zeroizing<String>,
    /// Display name (1 to 200 characters).
    #[serde(default)]
    pub name: Option<String>,
}

impl RegisterRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] =
        &[required("email"), required("password"), optional("name")];
}

/// `POST /v1/auth/register` answer: the user and its first session's tokens.
#[derive(Serialize, ToSchema)]
pub struct RegisterResponse {
    /// The new user.
    pub user: User,
    /// Tokens (the token response fields, inline).
    #[serde(flatten)]
    pub tokens: TokenResponse,
}

/// Create an account and sign in.
#[utoipa::path(
    post, path = "/v1/auth/register", tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; its first session's tokens", body = RegisterResponse),
        (status = 400, description = "Invalid request (`invalid_request`), or a common password or one containing the address's name (`weak_password`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Email already registered (`email_taken`)", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 64 KiB (`payload_too_large`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Per-IP rate limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Hash pool saturated (`overloaded`) or backend down (`unavailable`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn register(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Register)?;
    let b: RegisterRequest = body::parse(req, RegisterRequest::FIELDS)?;
    let mut errors = Vec::new();
    let name = match b.name.as_deref() {
        None => None,
        Some(n) => domain::parse_name("name", n)
            .map_err(|e| errors.push(e))
            .ok(),
    };
    let (email, password) = credentials(&b.email, b.password, errors)?;
    let Registered { user, grant } = call(
        app,
        Register {
            email,
            password,
            name,
            client: app.client(req),
        },
    )?;
    json(
        201,
        &RegisterResponse {
            user: User::from(&*user),
            tokens: TokenResponse::from(&grant),
        },
    )
}
