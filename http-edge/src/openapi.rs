//! The OpenAPI 3.1 document, generated from the handlers' `utoipa::path`
//! attributes and the DTO types. It lists exactly the routes in
//! [`crate::app::ROUTES`] (a test checks that).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::app::handlers;
use crate::dto;
use crate::problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Portcullis",
        description = "Authentication engine: registration, password login, rotating refresh tokens, sessions. Errors are RFC 9457 problem documents with a stable `code`.",
        license(name = "Apache-2.0"),
    ),
    paths(
        handlers::register,
        handlers::login,
        handlers::login_mfa,
        handlers::refresh,
        handlers::logout,
        handlers::logout_all,
        handlers::me,
        handlers::update_me,
        handlers::list_sessions,
        handlers::delete_session,
        handlers::request_email_verification,
        handlers::confirm_email_verification,
        handlers::request_email_change,
        handlers::confirm_email_change,
        handlers::forgot_password,
        handlers::reset_password,
        handlers::change_password,
        handlers::enroll_totp,
        handlers::confirm_totp,
        handlers::disable_totp,
        handlers::introspect,
        handlers::revoke,
        handlers::jwks,
        handlers::discovery,
        handlers::healthz,
        handlers::readyz,
        handlers::openapi,
    ),
    components(schemas(
        dto::RegisterRequest,
        dto::LoginRequest,
        dto::RefreshRequest,
        dto::UpdateMeRequest,
        dto::TokenRequest,
        dto::ConfirmTokenRequest,
        dto::EmailChangeRequest,
        dto::ForgotPasswordRequest,
        dto::ResetPasswordRequest,
        dto::ChangePasswordRequest,
        dto::MfaRequiredResponse,
        dto::LoginMfaRequest,
        dto::MfaCodeRequest,
        dto::TotpEnrollRequest,
        dto::TotpDisableRequest,
        dto::TotpEnrollResponse,
        dto::RecoveryCodesResponse,
        dto::User,
        dto::TokenResponse,
        dto::RegisterResponse,
        dto::Session,
        dto::SessionsResponse,
        dto::IntrospectionResponse,
        dto::Health,
        dto::Readiness,
        dto::Nodes,
        dto::Jwk,
        dto::JwkSet,
        dto::Discovery,
        problem::Problem,
        problem::ValidationError,
    )),
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
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json()
        .map(String::into_bytes)
        .unwrap_or_default()
}
