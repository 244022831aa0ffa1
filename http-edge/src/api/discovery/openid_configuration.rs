//! `GET /.well-known/openid-configuration`: issuer metadata, rendered once
//! at start-up.

use serde::Serialize;
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::app::App;
use crate::problem::EdgeError;
use crate::server::Body;
use crate::server::{Request, Response};

/// `GET /.well-known/openid-configuration`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/.well-known/openid-configuration",
    handler: discovery,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(discovery))]
struct Doc;

/// Discovery metadata (the subset of OpenID Provider / RFC 8414 metadata that applies).
#[derive(Serialize, ToSchema)]
pub struct Discovery {
    /// Issuer (`iss` of access tokens).
    pub issuer: String,
    /// JWK set URL.
    pub jwks_uri: String,
    /// RFC 7662 endpoint.
    pub introspection_endpoint: String,
    /// RFC 7009 endpoint.
    pub revocation_endpoint: String,
    /// Client authentication at the introspection endpoint.
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Client authentication at the revocation endpoint.
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// Subject identifier types.
    pub subject_types_supported: Vec<&'static str>,
    /// Signing algorithms of access tokens.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    /// Claims in access tokens.
    pub claims_supported: Vec<&'static str>,
}

impl Discovery {
    /// The document for `issuer`.
    pub fn for_issuer(issuer: &str) -> Discovery {
        let base = issuer.trim_end_matches('/');
        Discovery {
            issuer: issuer.to_owned(),
            jwks_uri: format!("{base}/.well-known/jwks.json"),
            introspection_endpoint: format!("{base}/v1/oauth/introspect"),
            revocation_endpoint: format!("{base}/v1/oauth/revoke"),
            introspection_endpoint_auth_methods_supported: vec!["none"],
            revocation_endpoint_auth_methods_supported: vec!["none"],
            subject_types_supported: vec!["public"],
            access_token_signing_alg_values_supported: vec!["EdDSA"],
            claims_supported: vec!["iss", "aud", "sub", "sid", "jti", "iat", "exp", "amr"],
        }
    }
}

/// Issuer metadata.
#[utoipa::path(
    get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses((status = 200, description = "Issuer metadata", body = Discovery))
)]
pub fn discovery(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    let mut r = Response::json(200, Vec::new());
    r.body = Body::Shared(app.docs.discovery.clone());
    Ok(r.with_header("Cache-Control", "public, max-age=3600"))
}
