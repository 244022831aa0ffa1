//! `POST /v1/passkeys/register/start` and `/finish`: a new passkey for the
//! bearer.

use portcullis_engine::domain::Password;
use portcullis_engine::ops::passkeys::{RegisterFinish, RegisterStart};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::RegisteredPasskey;
use crate::api::Endpoint;
use crate::api::support::{authenticated, call, json, limit, validation};
use crate::app::App;
use crate::json::{self as body, Field, optional, required_object};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/passkeys/register/start`.
pub(crate) const START: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/passkeys/register/start",
    handler: start,
    openapi: <StartDoc as utoipa::OpenApi>::openapi,
};

/// `POST /v1/passkeys/register/finish`.
pub(crate) const FINISH: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/passkeys/register/finish",
    handler: finish,
    openapi: <FinishDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(start), components(schemas(RegisterStartRequest)))]
struct StartDoc;

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(finish),
    components(schemas(RegisterFinishRequest, RegisteredPasskey))
)]
struct FinishDoc;

/// `POST /v1/passkeys/register/start`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterStartRequest {
    /// The account's current password; may be left out when the session
    /// signed in with a passkey in the last 10 minutes, or when the account
    /// has no password and signed in in the last 10 minutes.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Zeroizing<String>>,
}

impl RegisterStartRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[optional("password")];
}

/// Start registering a passkey: the options for the browser's
/// `navigator.credentials.create()` (a discoverable credential preferred,
/// user verification required, attestation `none`; the account's passkeys
/// excluded). Only for an account whose email is verified. The challenge
/// answers once, within 5 minutes, on any pod, to the session that started
/// it.
#[utoipa::path(
    post, path = "/v1/passkeys/register/start", tag = "passkeys", security(("bearer" = [])),
    request_body = RegisterStartRequest,
    responses(
        (status = 200, description = "`{publicKey: PublicKeyCredentialCreationOptions}` (binary fields base64url)", body = Object),
        (status = 400, description = "`invalid_request` (no password where one is needed; 20 passkeys already)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token`, `invalid_token`, a wrong password (`invalid_credentials`), or a passwordless account's sign-in too old (`reauthentication_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account's email is not verified (`email_not_verified`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, `too_many_requests`, or the session's password re-entries locked (`too_many_attempts`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn start(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let bearer = authenticated(req)?;
    let b: RegisterStartRequest = body::parse(req, RegisterStartRequest::FIELDS)?;
    let password = match b.password {
        None => None,
        Some(p) => Some(Password::parse("password", p).map_err(|e| validation(vec![e]))?),
    };
    let options = call(
        app,
        RegisterStart {
            bearer,
            password,
            client: app.client(req),
        },
    )?;
    json(200, &options)
}

/// `POST /v1/passkeys/register/finish`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    /// A name for it (default "Passkey"; at most 64 characters).
    #[serde(default)]
    pub name: Option<String>,
    /// The `PublicKeyCredential` from `navigator.credentials.create()`, as
    /// its `toJSON()` gives it (binary fields base64url).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

impl RegisterFinishRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[optional("name"), required_object("credential")];
}

/// Finish registering a passkey: the attestation is checked (origin, RP
/// ID, challenge, user verification) and the passkey kept. The owner is
/// mailed a notice.
#[utoipa::path(
    post, path = "/v1/passkeys/register/finish", tag = "passkeys", security(("bearer" = [])),
    request_body = RegisterFinishRequest,
    responses(
        (status = 201, description = "Registered", body = RegisteredPasskey),
        (status = 400, description = "The credential was refused, or its challenge is unknown, used, expired or another session's (`invalid_passkey`); or `invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn finish(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let bearer = authenticated(req)?;
    let b: RegisterFinishRequest = body::parse(req, RegisterFinishRequest::FIELDS)?;
    let p = call(
        app,
        RegisterFinish {
            bearer,
            name: b.name,
            credential: b.credential,
        },
    )?;
    json(
        201,
        &RegisteredPasskey {
            id: p.id,
            name: p.name,
            created_at: p.created_at,
        },
    )
}
