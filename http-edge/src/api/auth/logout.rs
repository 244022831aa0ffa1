//! `POST /v1/auth/logout`: end the current session.

use portcullis_engine::ops::auth::Logout;

use crate::api::Endpoint;
use crate::api::support::{bearer, call};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::server::{Request, Response};

/// `POST /v1/auth/logout`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/logout",
    handler: logout,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(logout))]
struct Doc;

/// End the current session.
#[utoipa::path(
    post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "The session is revoked; its tokens stop working at once"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn logout(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    call(
        app,
        Logout {
            bearer: bearer(req),
        },
    )?;
    Ok(Response::empty(204))
}
