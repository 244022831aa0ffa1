//! `GET /.well-known/jwks.json`: the keys that verify access tokens.

use portcullis_engine::ops::keys::Jwks;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::call;
use crate::app::App;
use crate::problem::EdgeError;
use crate::server::Body;
use crate::server::{Request, Response};

/// `GET /.well-known/jwks.json`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/.well-known/jwks.json",
    handler: jwks,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(jwks))]
struct Doc;

/// One JSON Web Key (Ed25519).
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// Public key, base64url.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// `sig`.
    #[serde(rename = "use")]
    #[schema(rename = "use")]
    pub use_: String,
    /// `EdDSA`.
    pub alg: String,
}

/// The JWK set.
#[derive(Serialize, ToSchema)]
pub struct JwkSet {
    /// Published keys, including the next one before it signs.
    pub keys: Vec<Jwk>,
}

/// The public keys that verify access tokens, including the next key before it signs.
#[utoipa::path(
    get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "JWK set", body = JwkSet))
)]
pub fn jwks(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    let bytes = call(app, Jwks)?;
    let mut r = Response::json(200, Vec::new());
    r.body = Body::Shared(bytes);
    Ok(r.with_header("Cache-Control", "public, max-age=300"))
}
