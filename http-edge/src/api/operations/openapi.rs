//! `GET /openapi.json`: this API's OpenAPI document, rendered once at
//! start-up (see [`crate::openapi`]).

use crate::api::Endpoint;
use crate::app::App;
use crate::problem::EdgeError;
use crate::server::Body;
use crate::server::{Request, Response};

/// `GET /openapi.json`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/openapi.json",
    handler: openapi,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(openapi))]
struct Doc;

/// This document.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 description of this API"))
)]
pub fn openapi(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    let mut r = Response::json(200, Vec::new());
    r.body = Body::Shared(app.docs.openapi.clone());
    Ok(r)
}
