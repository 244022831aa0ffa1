//! `DELETE /v1/sessions/{id}`: end one of the user's sessions.

use portcullis_engine::ops::sessions::DeleteSession;

use crate::api::Endpoint;
use crate::api::support::path_param;
use crate::api::support::{bearer, call};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::server::{Request, Response};

/// `DELETE /v1/sessions/{id}`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "DELETE",
    path: "/v1/sessions/{id}",
    handler: delete_session,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(delete_session))]
struct Doc;

/// End one of the user's sessions.
#[utoipa::path(
    delete, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "The session is revoked"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such session of this user (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn delete_session(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let id = path_param(ENDPOINT.path, req.path, "id").to_owned();
    call(
        app,
        DeleteSession {
            bearer: bearer(req),
            session_id: id,
        },
    )?;
    Ok(Response::empty(204))
}
