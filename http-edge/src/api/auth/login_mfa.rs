//! `POST /v1/auth/login/mfa`: the second step of a login with TOTP on.

use portcullis_engine::domain::FieldError;
use portcullis_engine::ops::auth::{LoginMfa, SecondFactorProof};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{call, json, limit, validation};
use crate::app::App;
use crate::dto::TokenResponse;
use crate::json::{self as body, Field, optional, optional_object, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/auth/login/mfa`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/login/mfa",
    handler: login_mfa,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(login_mfa))]
struct Doc;

/// `POST /v1/auth/login/mfa`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginMfaRequest {
    /// The `mfa_token` of the login's first step.
    #[schema(value_type = String)]
    pub mfa_token: Zeroizing<String>,
    /// A current 6-digit TOTP code, or an unused recovery code (or give
    /// `passkey_credential`).
    #[serde(default)]
    pub code: Option<String>,
    /// A passkey's answer (`PublicKeyCredential` JSON) to the options of
    /// `/v1/auth/login/mfa/passkey/start` (or give `code`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub passkey_credential: Option<serde_json::Value>,
}

impl LoginMfaRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[
        required("mfa_token"),
        optional("code"),
        optional_object("passkey_credential"),
    ];
}

/// The second step of a login with TOTP on.
#[utoipa::path(
    post, path = "/v1/auth/login/mfa", tag = "auth",
    request_body = LoginMfaRequest,
    responses(
        (status = 200, description = "Signed in (`amr`: pwd+otp, pwd+mfa for a recovery code, pwd+hwk or pwd+swk for a passkey; `fed` in place of `pwd` after a provider), with a `device_token`", body = TokenResponse),
        (status = 400, description = "Invalid request: neither or both of `code` and `passkey_credential` (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong or replayed code, used recovery code, a refused passkey answer (unknown, used or expired challenge, another account's, no user verification, counter gone back), or invalid/expired `mfa_token` (`invalid_mfa`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The second step is locked after repeated wrong codes, whatever the password does; the `mfa_token` that saw them is dead (`too_many_attempts`); or the per-IP limit (`rate_limited`); with Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`, with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn login_mfa(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let b: LoginMfaRequest = body::parse(req, LoginMfaRequest::FIELDS)?;
    let proof = match (b.code, b.passkey_credential) {
        (Some(code), None) => SecondFactorProof::Code(code),
        (None, Some(credential)) => SecondFactorProof::Passkey(credential),
        _ => {
            return Err(validation(vec![FieldError {
                field: "code",
                message: "give exactly one of code and passkey_credential".into(),
            }]));
        }
    };
    let grant = call(
        app,
        LoginMfa {
            mfa_token: b.mfa_token,
            proof,
            client: app.client(req),
        },
    )?;
    json(200, &TokenResponse::from(&grant))
}
