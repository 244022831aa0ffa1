//! `/v1/oauth/{provider}/authorize`: send the browser to the provider. A
//! GET starts a sign-in; a form POST (a browser navigation, so the answer's
//! cookie is kept) also carries a `link_token`, which never goes in a URL.

use portcullis_engine::domain::FieldError;
use portcullis_engine::ops::social::Authorize;
use zeroize::Zeroizing;

use super::redirect;
use crate::api::Endpoint;
use crate::api::support::{
    call, form_body, limit, path_param, query_param, urlencoded_param, validation,
};
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

/// `POST /v1/oauth/{provider}/authorize` (a form post).
pub(crate) const FORM_POST: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/oauth/{provider}/authorize",
    handler: authorize_form_post,
    openapi: <PostDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(authorize))]
struct Doc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(authorize_form_post))]
struct PostDoc;

/// Start a sign-in with a provider. Portcullis answers 302 to the provider
/// with its own `state`, PKCE S256 and `nonce`, and binds the round trip to
/// this browser with a cookie of its own (`__Host-`, `HttpOnly; Secure;
/// SameSite=Lax`; `SameSite=None` for a provider that posts its callback).
#[utoipa::path(
    get, path = "/v1/oauth/{provider}/authorize", tag = "social",
    params(
        ("provider" = String, Path, description = "A configured provider's name"),
        ("redirect_uri" = String, Query, description = "Where the client app wants the answer; must be on the configured list"),
        ("state" = String, Query, description = "The client app's state, returned unchanged"),
        ("code_challenge" = String, Query, description = "The client app's PKCE challenge: base64url SHA-256 of its verifier"),
        ("code_challenge_method" = String, Query, description = "`S256`"),
    ),
    responses(
        (status = 302, description = "To the provider; sets the flow's cookie"),
        (status = 400, description = "`invalid_request` (an unlisted `redirect_uri`, no S256 challenge, a `link_token` in the URL, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown_provider`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn authorize(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    if query_param(req, "link_token")?.is_some() {
        return Err(validation(vec![FieldError {
            field: "link_token",
            message: "never goes in a URL: send it in a form post to this path".into(),
        }]));
    }
    start(app, req, req.query.as_bytes(), false)
}

/// The same as the GET, as a form post (`application/x-www-form-urlencoded`
/// fields of the same names), which may also carry `link_token` (from
/// `POST /v1/users/me/identities`): the provider is then linked to that
/// token's signed-in account instead of signing in.
#[utoipa::path(
    post, path = "/v1/oauth/{provider}/authorize", tag = "social",
    params(("provider" = String, Path, description = "A configured provider's name")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`redirect_uri`, `state`, `code_challenge`, `code_challenge_method`, and optionally `link_token`"),
    responses(
        (status = 302, description = "To the provider; sets the flow's cookie"),
        (status = 400, description = "`invalid_request` (also: an unknown, used or expired `link_token`, or one issued for another `code_challenge`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`unknown_provider`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a form (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached (`unavailable`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn authorize_form_post(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    let body = form_body(req)?;
    start(app, req, body, true)
}

fn start(
    app: &App,
    req: &Request<'_>,
    fields: &[u8],
    may_link: bool,
) -> Result<Response, EdgeError> {
    let provider = path_param(ENDPOINT.path, req.path, "provider").to_owned();
    // Missing fields are refused by the engine, after the provider is known
    // (an unknown one is 404 whatever else is wrong).
    let field = |name: &'static str| {
        Ok::<_, EdgeError>(urlencoded_param(fields, name)?.unwrap_or_default())
    };
    let redirect_uri = field("redirect_uri")?;
    let state = field("state")?;
    let code_challenge = field("code_challenge")?;
    let code_challenge_method = field("code_challenge_method")?;
    let link_token = if may_link {
        urlencoded_param(fields, "link_token")?.map(Zeroizing::new)
    } else {
        None
    };
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
            "{}={}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite={same_site}",
            r.cookie_name, r.cookie, r.cookie_max_age
        ),
    ))
}
