//! The OpenAPI 3.1 document: the service's description here, merged with
//! the description of every endpoint in [`crate::api::ENDPOINTS`] (each
//! generated from its handler's `utoipa::path` attribute and its body
//! types), so it lists exactly the served routes.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::ENDPOINTS;
use crate::problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Authentication engine: registration, password login with TOTP, social login (OpenID Connect), rotating refresh tokens, sessions, email flows. Errors are RFC 9457 problem documents with a stable `code`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(problem::Problem, problem::ValidationError)),
    modifiers(&BearerAuth),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document, with the running version, as JSON bytes.
pub fn document() -> Vec<u8> {
    let mut doc = ApiDoc::openapi();
    for e in ENDPOINTS {
        doc.merge((e.openapi)());
    }
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json()
        .map(String::into_bytes)
        .unwrap_or_default()
}
