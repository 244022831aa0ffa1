//! `GET /v1/oauth/{provider}/authorize`: send the browser to the provider.

use portcullis_engine::ops::social::Authorize;
use zeroize::Zeroizing;

use super::{COOKIE, redirect};
use crate::api::Endpoint;
use crate::api::support::{call, limit, path_param, query_param};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `GET /v1/oauth/{provider}/authorize`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/v1/oauth/{provider}/authorize",
    handler: authorize,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(authorize))]
struct Doc;

/// Start a sign-in with a provider (or, with `link_token`, link it to the
/// signed-in account that obtained the token). Portcullis answers 302 to
/// the provider with its own `state`, PKCE S256 and `nonce`, and binds the
/// round trip to this browser with an `HttpOnly; Secure; SameSite=Lax`
/// cookie.
#[utoipa::path(
    get, path = "/v1/oauth/{provider}/authorize", tag = "social",
    params(
        ("provider" = String, Path, description = "A configured provider's name"),
        ("redirect_uri" = String, Query, description = "Where the client app wants the answer; must be on the configured list"),
        ("state" = String, Query, description = "The client app's state, returned unchanged"),
        ("code_challenge" = String, Query, description = "The client app's PKCE challenge: base64url SHA-256 of its verifier"),
        ("code_challenge_method" = String, Query, description = "`S256`"),
        ("link_token" = Option<String>, Query, description = "From `POST /v1/users/me/identities`: link instead of signing in"),
    ),
    responses(
        (status = 302, description = "To the provider; sets the flow's cookie"),
        (status = 400, description = "`invalid_request` (an unlisted `redirect_uri`, no S256 challenge, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown_provider`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn authorize(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    let provider = path_param(ENDPOINT.path, req.path, "provider").to_owned();
    // Missing parameters are refused by the engine, after the provider is
    // known (an unknown one is 404 whatever else is wrong).
    let param =
        |name: &'static str| Ok::<_, EdgeError>(query_param(req, name)?.unwrap_or_default());
    let redirect_uri = param("redirect_uri")?;
    let state = param("state")?;
    let code_challenge = param("code_challenge")?;
    let code_challenge_method = param("code_challenge_method")?;
    let link_token = query_param(req, "link_token")?.map(Zeroizing::new);
    let r = call(
        app,
        Authorize {
            provider,
            redirect_uri,
            state,
            code_challenge,
            code_challenge_method,
            link_token,
            client: app.client(req),
        },
    )?;
    // SameSite=Lax keeps the cookie off cross-site posts; a provider that
    // posts its callback (Apple) needs None (the cookie still binds the
    // flow: another browser's callback lacks it).
    let same_site = if r.cross_site_post { "None" } else { "Lax" };
    Ok(redirect(r.location).with_header(
        "Set-Cookie",
        format!(
            "{COOKIE}={}; Path=/v1/oauth/; Max-Age={}; HttpOnly; Secure; SameSite={same_site}",
            r.cookie, r.cookie_max_age
        ),
    ))
}
