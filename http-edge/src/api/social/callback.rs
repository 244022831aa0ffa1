//! `GET /v1/oauth/{provider}/callback`: the provider sends the browser back.

use portcullis_engine::ops::social::Callback;

use portcullis_engine::ops::social::cookie_name;

use super::redirect;
use crate::api::Endpoint;
use crate::api::support::{
    call, cookie, form_body, limit, path_param, query_param, urlencoded_param,
};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `GET /v1/oauth/{provider}/callback`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/v1/oauth/{provider}/callback",
    handler: callback,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

/// `POST /v1/oauth/{provider}/callback` (`response_mode=form_post`).
pub(crate) const FORM_POST: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/oauth/{provider}/callback",
    handler: callback_form_post,
    openapi: <PostDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(callback))]
struct Doc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(callback_form_post))]
struct PostDoc;

/// The provider's redirect back. Portcullis checks the `state` (once) and
/// the browser's cookie, exchanges the code with its PKCE verifier, checks
/// the ID token, then answers 302 to the client app's
/// `redirect_uri?code=<one-time code, 60 s>&state=<its state>`, or
/// `?error=...&state=` (RFC 6749 4.1.2.1).
#[utoipa::path(
    get, path = "/v1/oauth/{provider}/callback", tag = "social",
    params(
        ("provider" = String, Path, description = "The provider's name"),
        ("code" = Option<String>, Query, description = "The provider's authorization code"),
        ("state" = String, Query, description = "Portcullis' state"),
        ("error" = Option<String>, Query, description = "The provider's error"),
    ),
    responses(
        (status = 302, description = "To the client app: `code` and `state`, or `error` and `state`; clears the flow's cookie"),
        (status = 400, description = "Unknown, used or expired state: no client to answer (`invalid_state`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn callback(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    finish(
        app,
        req,
        query_param(req, "code")?,
        query_param(req, "state")?,
        query_param(req, "error")?,
    )
}

/// The provider's redirect back as a form post (`response_mode=form_post`,
/// Sign in with Apple): the same checks and answers as the GET.
#[utoipa::path(
    post, path = "/v1/oauth/{provider}/callback", tag = "social",
    params(("provider" = String, Path, description = "The provider's name")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`code`, `state`, and `error` or Apple's `user`"),
    responses(
        (status = 302, description = "As the GET callback"),
        (status = 400, description = "`invalid_state`, or a parameter given twice (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not a form (`unsupported_media_type`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn callback_form_post(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    let body = form_body(req)?;
    let field = |name: &'static str| urlencoded_param(body, name);
    finish(app, req, field("code")?, field("state")?, field("error")?)
}

fn finish(
    app: &App,
    req: &Request<'_>,
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
) -> Result<Response, EdgeError> {
    let name = cookie_name(state.as_deref().unwrap_or(""));
    let r = call(
        app,
        Callback {
            provider: path_param(ENDPOINT.path, req.path, "provider").to_owned(),
            code,
            state,
            error,
            cookie: cookie(req, &name),
        },
    )?;
    Ok(redirect(r.location).with_header(
        "Set-Cookie",
        format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"),
    ))
}
