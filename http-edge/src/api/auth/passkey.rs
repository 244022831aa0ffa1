//! Signing in with a passkey: `POST /v1/auth/passkey/start` and `/finish`
//! (a discoverable credential: no email typed), and
//! `POST /v1/auth/login/mfa/passkey/start` (a passkey as the second step;
//! finished at `/v1/auth/login/mfa`).

use portcullis_engine::ops::auth::{MfaPasskeyStart, PasskeyFinish, PasskeyOptions, PasskeyStart};
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use crate::api::Endpoint;
use crate::api::support::{call, json, limit};
use crate::app::App;
use crate::dto::TokenResponse;
use crate::json::{self as body, Field, required, required_object};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/auth/passkey/start`.
pub(crate) const START: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/passkey/start",
    handler: start,
    openapi: <StartDoc as utoipa::OpenApi>::openapi,
};

/// `POST /v1/auth/passkey/finish`.
pub(crate) const FINISH: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/passkey/finish",
    handler: finish,
    openapi: <FinishDoc as utoipa::OpenApi>::openapi,
};

/// `POST /v1/auth/login/mfa/passkey/start`.
pub(crate) const MFA_START: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/login/mfa/passkey/start",
    handler: mfa_start,
    openapi: <MfaStartDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(start))]
struct StartDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(finish), components(schemas(PasskeyFinishRequest)))]
struct FinishDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(mfa_start), components(schemas(MfaPasskeyStartRequest)))]
struct MfaStartDoc;

fn options(o: PasskeyOptions) -> Result<Response, EdgeError> {
    let mut v = o.options;
    if let (Some(map), Some(id)) = (v.as_object_mut(), o.challenge_id) {
        map.insert("challenge_id".into(), id.into());
    }
    json(200, &v)
}

/// Start a passkey sign-in: the options for the browser's
/// `navigator.credentials.get()` (no credentials listed: the authenticator
/// offers its discoverable ones; user verification required), and the
/// `challenge_id` the finish names. The challenge answers once, within 5
/// minutes, on any pod.
#[utoipa::path(
    post, path = "/v1/auth/passkey/start", tag = "passkeys",
    responses(
        (status = 200, description = "`{publicKey: PublicKeyCredentialRequestOptions, challenge_id}` (binary fields base64url)", body = Object),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn start(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let o = call(
        app,
        PasskeyStart {
            client: app.client(req),
        },
    )?;
    options(o)
}

/// `POST /v1/auth/passkey/finish`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasskeyFinishRequest {
    /// The `challenge_id` of the start.
    #[schema(value_type = String)]
    pub challenge_id: Zeroizing<String>,
    /// The `PublicKeyCredential` from `navigator.credentials.get()`, as its
    /// `toJSON()` gives it (with `response.userHandle`).
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

impl PasskeyFinishRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("challenge_id"), required_object("credential")];
}

/// Finish a passkey sign-in: the assertion is checked (origin, RP ID,
/// challenge, signature by a passkey of the account its user handle names,
/// user verification, sign counter) and a session opened (`amr`: `hwk` or,
/// for a synced passkey, `swk`, and `user`). No second step follows: the
/// passkey verified the user on the device.
#[utoipa::path(
    post, path = "/v1/auth/passkey/finish", tag = "passkeys",
    request_body = PasskeyFinishRequest,
    responses(
        (status = 200, description = "Signed in, with a `device_token`", body = TokenResponse),
        (status = 400, description = "`invalid_request` (not a credential)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Refused: unknown, used or expired challenge, wrong origin or RP ID, bad signature, no user verification, a credential not on the account, or a sign counter that went backwards (`invalid_passkey`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn finish(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let b: PasskeyFinishRequest = body::parse(req, PasskeyFinishRequest::FIELDS)?;
    let grant = call(
        app,
        PasskeyFinish {
            challenge_id: b.challenge_id,
            credential: b.credential,
            client: app.client(req),
        },
    )?;
    json(200, &TokenResponse::from(&grant))
}

/// `POST /v1/auth/login/mfa/passkey/start`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaPasskeyStartRequest {
    /// The `mfa_token` of the login's first step.
    #[schema(value_type = String)]
    pub mfa_token: Zeroizing<String>,
}

impl MfaPasskeyStartRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("mfa_token")];
}

/// Options for a passkey as the second step of a login: the account's
/// passkeys allowed, user verification required. Send the browser's answer
/// as `passkey_credential` to `/v1/auth/login/mfa` with the same
/// `mfa_token`.
#[utoipa::path(
    post, path = "/v1/auth/login/mfa/passkey/start", tag = "auth",
    request_body = MfaPasskeyStartRequest,
    responses(
        (status = 200, description = "`{publicKey: PublicKeyCredentialRequestOptions}` (binary fields base64url)", body = Object),
        (status = 400, description = "`invalid_request` (the account has no passkey)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Invalid or expired `mfa_token` (`invalid_mfa`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The second step is locked (`too_many_attempts`), the per-account limit (`too_many_requests`), or `rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded` or `unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn mfa_start(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Login)?;
    let b: MfaPasskeyStartRequest = body::parse(req, MfaPasskeyStartRequest::FIELDS)?;
    let o = call(
        app,
        MfaPasskeyStart {
            mfa_token: b.mfa_token,
        },
    )?;
    options(o)
}
