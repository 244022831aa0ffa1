//! `POST /v1/auth/logout-all`: end every session of the user.

use portcullis_engine::ops::auth::LogoutAll;

use crate::api::Endpoint;
use crate::api::support::{bearer, call};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::server::{Request, Response};

/// `POST /v1/auth/logout-all`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/auth/logout-all",
    handler: logout_all,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(logout_all))]
struct Doc;

/// End every session of the user.
#[utoipa::path(
    post, path = "/v1/auth/logout-all", tag = "auth", security(("bearer" = [])),
    responses(
        (status = 204, description = "Every session of the user is revoked"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn logout_all(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    call(
        app,
        LogoutAll {
            bearer: bearer(req),
        },
    )?;
    Ok(Response::empty(204))
}
