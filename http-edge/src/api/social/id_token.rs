//! `POST /v1/oauth/{provider}/id-token`: native apps' sign-in.

use portcullis_engine::ops::social::IdTokenSignIn;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::{SocialTokenResponse, answer};
use crate::api::Endpoint;
use crate::api::support::{call, limit, path_param};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/oauth/{provider}/id-token`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/oauth/{provider}/id-token",
    handler: id_token,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(id_token), components(schemas(IdTokenRequest)))]
struct Doc;

/// `POST /v1/oauth/{provider}/id-token`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdTokenRequest {
    /// The provider's ID token, as its sign-in SDK returned it.
    #[schema(value_type = String)]
    pub id_token: Zeroizing<String>,
    /// The nonce the app sent in its request to the provider.
    #[schema(value_type = String)]
    pub nonce: Zeroizing<String>,
}

impl IdTokenRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("id_token"), required("nonce")];
}

/// Sign in with a provider ID token a native app obtained itself (Google
/// or Apple sign-in SDKs). It is checked against the provider's keys, with
/// `iss`, `aud` (the configured client ids), `exp`, `iat` and `nonce`, and
/// accepted once.
#[utoipa::path(
    post, path = "/v1/oauth/{provider}/id-token", tag = "social",
    params(("provider" = String, Path, description = "A configured provider's name")),
    request_body = IdTokenRequest,
    responses(
        (status = 200, description = "Signed in: the token response with `user` and `created`; or (TOTP on) `{mfa_required: true, mfa_token, expires_in}`", body = SocialTokenResponse),
        (status = 400, description = "`invalid_request` or `email_required`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "The ID token does not verify or was used already (`invalid_id_token`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown_provider`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`account_exists`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` or `too_many_attempts`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider's keys cannot be fetched (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn id_token(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    let provider = path_param(ENDPOINT.path, req.path, "provider").to_owned();
    let b: IdTokenRequest = body::parse(req, IdTokenRequest::FIELDS)?;
    answer(call(
        app,
        IdTokenSignIn {
            provider,
            id_token: b.id_token,
            nonce: b.nonce,
            client: app.client(req),
        },
    )?)
}
