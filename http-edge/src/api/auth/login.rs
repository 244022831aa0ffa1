//! `POST /v1/auth/login`: sign in with email and password.

use portcullis_engine::ops::auth::{Login, LoginReply};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{call, credentials, json, limit};
use crate::app::App;
use crate::dto::TokenResponse;
use crate::json::{self as body, Field, optional, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/auth/login`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/login",
    handler: login,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(login), components(schemas(MfaRequiredResponse)))]
struct Doc;

/// `POST /v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login email.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Zeroizing<String>,
    /// The `device_token` a previous successful login of this client
    /// returned: failures counted against the account from elsewhere never
    /// lock out a client that presents a valid one.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "pdt_...")]
    pub device_token: Option<Zeroizing<String>>,
}

impl LoginRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[
        required("email"),
        required("password"),
        optional("device_token"),
    ];
}

/// `POST /v1/auth/login` when TOTP is on: the password was right, now the code.
#[derive(Serialize, ToSchema)]
pub struct MfaRequiredResponse {
    /// Always `true`.
    pub mfa_required: bool,
    /// Send it with a code to `POST /v1/auth/login/mfa`.
    pub mfa_token: String,
    /// Seconds the `mfa_token` stays valid.
    pub expires_in: u64,
}

/// Sign in with email and password.
#[utoipa::path(
    post, path = "/v1/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in (with a `device_token` to send with the next logins), or (TOTP on) `{mfa_required: true, mfa_token, expires_in}`: finish at /v1/auth/login/mfa", body = TokenResponse),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong email or password, the same for unknown emails (`invalid_credentials`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated failures (`too_many_attempts`): this client's address for this account, this device token, or (without a valid device token) the account after many failures from anywhere; or the per-IP limit (`rate_limited`); with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn login(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let b: LoginRequest = body::parse(req, LoginRequest::FIELDS)?;
    let (email, password) = credentials(&b.email, b.password, Vec::new())?;
    let reply = call(
        app,
        Login {
            email,
            password,
            device_token: b.device_token,
            client: app.client(req),
        },
    )?;
    match reply {
        LoginReply::MfaRequired(m) => json(
            200,
            &MfaRequiredResponse {
                mfa_required: true,
                mfa_token: m.mfa_token.expose().to_owned(),
                expires_in: m.expires_in,
            },
        ),
        LoginReply::Granted(g) => json(200, &TokenResponse::from(&g)),
    }
}
