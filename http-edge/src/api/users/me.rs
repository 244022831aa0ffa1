//! `GET /v1/users/me`: the signed-in user.

use portcullis_engine::ops::users::Me;

use crate::api::Endpoint;
use crate::api::support::{bearer, call, json};
use crate::app::App;
use crate::dto::User;
use crate::problem::{EdgeError, Problem};
use crate::server::{Request, Response};

/// `GET /v1/users/me`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/v1/users/me",
    handler: me,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(me))]
struct Doc;

/// The signed-in user.
#[utoipa::path(
    get, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "`missing_token` or `invalid_token` (also when the session was logged out)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn me(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let user = call(
        app,
        Me {
            bearer: bearer(req),
        },
    )?;
    json(200, &User::from(&*user))
}
