//! `GET /docs`: the interactive API reference (Swagger UI over
//! `/openapi.json`), every asset embedded in the binary and served from
//! here: the page requests nothing from any other host (its Content
//! Security Policy would refuse it). `GET /api` (the seed's path) redirects
//! to it.
//!
//! Swagger UI rather than Redoc (no "try it out") or Scalar (a larger
//! bundle, and fonts and a proxy from its own servers unless reconfigured):
//! it calls the API from the page, its Authorize button takes a bearer
//! token for the `bearer` scheme the document declares, and it is the one
//! teams behind the other servers Portcullis is compared with know.

use crate::api::Endpoint;
use crate::api::support::path_param;
use crate::app::App;
use crate::problem::EdgeError;
use crate::server::{Body, Request, Response};

/// `GET /docs`.
pub(crate) const PAGE: Endpoint = Endpoint {
    method: "GET",
    path: "/docs",
    handler: page,
    openapi: <PageDoc as utoipa::OpenApi>::openapi,
};

/// `GET /docs/{asset}`.
pub(crate) const ASSET: Endpoint = Endpoint {
    method: "GET",
    path: "/docs/{asset}",
    handler: asset,
    openapi: <AssetDoc as utoipa::OpenApi>::openapi,
};

/// `GET /api`.
pub(crate) const API: Endpoint = Endpoint {
    method: "GET",
    path: "/api",
    handler: api,
    openapi: <ApiDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(page))]
struct PageDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(asset))]
struct AssetDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(api))]
struct ApiDoc;

/// What the page may load: only this server's own scripts, styles, images
/// and API (Swagger UI sets inline styles).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";

/// The embedded files: name, content type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/swagger-ui-bundle.js"),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/swagger-ui.css"),
    ),
    (
        "init.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/init.js"),
    ),
    (
        "favicon.png",
        "image/png",
        include_bytes!("../../../assets/swagger-ui/favicon-32x32.png"),
    ),
    (
        "LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("../../../assets/swagger-ui/LICENSE"),
    ),
];

fn file(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut r = Response::empty(200);
    r.content_type = Some(content_type);
    r.body = Body::Static(bytes);
    r
}

/// The interactive API reference.
#[utoipa::path(
    get, path = "/docs", tag = "operations",
    responses((status = 200, description = "An HTML page: Swagger UI over /openapi.json, every asset served by Portcullis itself", content_type = "text/html"))
)]
pub fn page(_app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    Ok(
        file(HTML, include_bytes!("../../../assets/swagger-ui/docs.html"))
            .with_header("Content-Security-Policy", CSP)
            .with_header("Referrer-Policy", "no-referrer")
            .with_header("X-Frame-Options", "DENY"),
    )
}

/// A file of the API reference page (embedded in the binary).
#[utoipa::path(
    get, path = "/docs/{asset}", tag = "operations",
    params(("asset" = String, Path, description = "`swagger-ui-bundle.js`, `swagger-ui.css`, `init.js`, `favicon.png` or `LICENSE`")),
    responses(
        (status = 200, description = "The file"),
        (status = 404, description = "No such file (`not_found`)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub fn asset(_app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let name = path_param(ASSET.path, req.path, "asset");
    let (_, content_type, bytes) = ASSETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or(EdgeError::NotFound)?;
    Ok(file(content_type, bytes).with_header("Cache-Control", "public, max-age=3600"))
}

/// The seed's path of the API reference.
#[utoipa::path(
    get, path = "/api", tag = "operations",
    responses((status = 301, description = "To /docs"))
)]
pub fn api(_app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    Ok(Response::empty(301).with_header("Location", "/docs"))
}
