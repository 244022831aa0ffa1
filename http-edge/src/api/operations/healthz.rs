//! `GET /healthz`: liveness.

use serde::Serialize;
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::json;
use crate::app::App;
use crate::bridge::Bridge;
use crate::problem::EdgeError;
use crate::server::{Request, Response};

/// `GET /healthz`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/healthz",
    handler: healthz,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz))]
struct Doc;

/// `GET /healthz` answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// Liveness: the process serves requests.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses(
        (status = 200, description = "Alive", body = Health),
        (status = 503, description = "A store failed beyond repair (e.g. an fsync error): restart the process", body = Health),
    )
)]
pub fn healthz(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    liveness(&app.bridge)
}

/// The liveness answer (shared with the admin listener): 503 once a store is
/// broken beyond repair, so the orchestrator restarts the process.
pub fn liveness(bridge: &Bridge) -> Result<Response, EdgeError> {
    if bridge.engine().is_alive() {
        json(200, &Health { status: "ok" })
    } else {
        Ok(json(503, &Health { status: "failed" })?.with_header("Retry-After", "1"))
    }
}
