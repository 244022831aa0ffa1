//! `POST /v1/auth/social/token`: the client app's code exchange.

use portcullis_engine::ops::social::SocialToken;
use serde::Deserialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::{SocialTokenResponse, answer};
use crate::api::Endpoint;
use crate::api::support::{call, limit};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `POST /v1/auth/social/token`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/social/token",
    handler: social_token,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(social_token),
    components(schemas(SocialTokenRequest, SocialTokenResponse))
)]
struct Doc;

/// `POST /v1/auth/social/token`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialTokenRequest {
    /// The one-time code from the callback's redirect.
    #[schema(value_type = String)]
    pub code: Zeroizing<String>,
    /// The PKCE verifier whose S256 challenge began the flow.
    #[schema(value_type = String)]
    pub code_verifier: Zeroizing<String>,
}

impl SocialTokenRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("code"), required("code_verifier")];
}

/// Exchange the callback's one-time code (with the client's PKCE verifier)
/// for a session. A new identity creates an account (`created: true`); one
/// whose email belongs to an account links to it only when the provider
/// and the account both have it verified.
#[utoipa::path(
    post, path = "/v1/auth/social/token", tag = "social",
    request_body = SocialTokenRequest,
    responses(
        (status = 200, description = "Signed in: the token response with `user` and `created`; or (TOTP on) `{mfa_required: true, mfa_token, expires_in}`", body = SocialTokenResponse),
        (status = 400, description = "`invalid_request`, or the provider shared no email (`email_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Unknown, used or expired code, or a wrong `code_verifier` (`invalid_grant`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An account with this email exists and may not be linked automatically (`account_exists`): sign in and link; or (finishing a link) the account has another identity of this provider (`identity_exists`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited` or `too_many_attempts`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn social_token(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    let b: SocialTokenRequest = body::parse(req, SocialTokenRequest::FIELDS)?;
    answer(call(
        app,
        SocialToken {
            code: b.code,
            code_verifier: b.code_verifier,
            client: app.client(req),
        },
    )?)
}
