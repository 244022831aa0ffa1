//! `POST /v1/mfa/totp/confirm`: confirm the enrollment with a code.

use portcullis_engine::ops::mfa::ConfirmTotp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::{authenticated, call, json, limit};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/mfa/totp/confirm`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/mfa/totp/confirm",
    handler: confirm_totp,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(confirm_totp))]
struct Doc;

/// `POST /v1/mfa/totp/confirm` and `/disable`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaCodeRequest {
    /// A current 6-digit TOTP code.
    pub code: String,
}

impl MfaCodeRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("code")];
}

/// `POST /v1/mfa/totp/confirm`.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodesResponse {
    /// Ten single-use recovery codes, shown only now.
    pub recovery_codes: Vec<String>,
}

/// Confirm the enrollment with a code: TOTP is on.
#[utoipa::path(
    post, path = "/v1/mfa/totp/confirm", tag = "mfa", security(("bearer" = [])),
    request_body = MfaCodeRequest,
    responses(
        (status = 200, description = "TOTP is on; ten single-use recovery codes, shown only now", body = RecoveryCodesResponse),
        (status = 400, description = "Wrong code or nothing enrolled (`invalid_mfa`), or an invalid body (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "TOTP is on already (`mfa_already_enabled`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Locked after repeated wrong codes (`too_many_attempts`), per-account limit (`too_many_requests`) or per-IP limit (`rate_limited`), with Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn confirm_totp(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let token = authenticated(req)?;
    let b: MfaCodeRequest = body::parse(req, MfaCodeRequest::FIELDS)?;
    let codes = call(
        app,
        ConfirmTotp {
            bearer: token,
            code: b.code,
            client: app.client(req),
        },
    )?;
    json(
        200,
        &RecoveryCodesResponse {
            recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
        },
    )
}
