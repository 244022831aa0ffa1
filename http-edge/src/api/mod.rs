//! The API, one module per endpoint, grouped by resource. An endpoint
//! module holds its request and response bodies, its handler (read and
//! validate the request, call the engine operation, shape its typed
//! reply), its OpenAPI description, and its [`Endpoint`] entry. Adding an
//! endpoint is a new module and one line in [`ENDPOINTS`].

pub mod auth;
pub mod discovery;
pub mod email;
pub mod mfa;
pub mod oauth;
pub mod operations;
pub mod passkeys;
pub mod password;
pub mod sessions;
pub mod social;
pub(crate) mod support;
pub mod users;

pub use operations::healthz::liveness;
pub use operations::readyz::readiness;

use crate::app::App;
use crate::problem::EdgeError;
use crate::server::{Request, Response};

/// A handler: the request in, the response (or a problem) out.
pub type HandlerFn = fn(&App, &Request<'_>) -> Result<Response, EdgeError>;

/// One method on one path.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// `GET`, `POST`, ... (`HEAD` is answered by `GET`).
    pub method: &'static str,
    /// Path template; `{name}` stands for one path segment.
    pub path: &'static str,
    /// The handler.
    pub handler: HandlerFn,
    /// The endpoint's OpenAPI description (its path item and the schemas it
    /// names).
    pub openapi: fn() -> utoipa::openapi::OpenApi,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Every endpoint of the API.
pub static ENDPOINTS: &[Endpoint] = &[
    auth::register::ENDPOINT,
    auth::login::ENDPOINT,
    auth::login_mfa::ENDPOINT,
    auth::refresh::ENDPOINT,
    auth::logout::ENDPOINT,
    auth::logout_all::ENDPOINT,
    users::me::ENDPOINT,
    users::update_me::ENDPOINT,
    sessions::list::ENDPOINT,
    sessions::delete::ENDPOINT,
    email::verify_request::ENDPOINT,
    email::verify_confirm::ENDPOINT,
    email::change_request::ENDPOINT,
    email::change_confirm::ENDPOINT,
    password::forgot::ENDPOINT,
    password::reset::ENDPOINT,
    password::change::ENDPOINT,
    mfa::enroll::ENDPOINT,
    mfa::confirm::ENDPOINT,
    mfa::disable::ENDPOINT,
    auth::passkey::START,
    auth::passkey::FINISH,
    auth::passkey::MFA_START,
    passkeys::register::START,
    passkeys::register::FINISH,
    passkeys::manage::LIST,
    passkeys::manage::RENAME,
    passkeys::manage::DELETE,
    social::authorize::ENDPOINT,
    social::authorize::FORM_POST,
    social::callback::ENDPOINT,
    social::callback::FORM_POST,
    social::token::ENDPOINT,
    social::id_token::ENDPOINT,
    social::identities::LIST,
    social::identities::LINK,
    social::identities::UNLINK,
    oauth::introspect::ENDPOINT,
    oauth::revoke::ENDPOINT,
    discovery::jwks::ENDPOINT,
    discovery::openid_configuration::ENDPOINT,
    operations::docs::PAGE,
    operations::docs::ASSET,
    operations::docs::API,
    operations::healthz::ENDPOINT,
    operations::readyz::ENDPOINT,
    operations::openapi::ENDPOINT,
];
