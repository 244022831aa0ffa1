//! Social login: `/v1/oauth/{provider}/*` (the browser's redirects and the
//! native apps' ID tokens), `/v1/auth/social/token`, and the account's
//! identities under `/v1/users/me/identities`.

pub mod authorize;
pub mod callback;
pub mod id_token;
pub mod identities;
pub mod token;

use portcullis_engine::ops::social::SocialReply;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::auth::login::MfaRequiredResponse;
use crate::api::support::json;
use crate::dto::{TokenResponse, User};
use crate::problem::EdgeError;
use crate::server::Response;

/// A social sign-in's token response.
#[derive(Serialize, ToSchema)]
pub struct SocialTokenResponse {
    /// The account signed in to.
    pub user: User,
    /// Whether this sign-in created it.
    pub created: bool,
    /// Tokens (the token response fields, inline).
    #[serde(flatten)]
    pub tokens: TokenResponse,
}

/// The answer of a social sign-in: tokens, or (TOTP on) the second step.
pub(crate) fn answer(reply: SocialReply) -> Result<Response, EdgeError> {
    match reply {
        SocialReply::Granted {
            user,
            grant,
            created,
        } => json(
            200,
            &SocialTokenResponse {
                user: User::from(&*user),
                created,
                tokens: TokenResponse::from(&grant),
            },
        ),
        SocialReply::MfaRequired(m) => json(
            200,
            &MfaRequiredResponse {
                mfa_required: true,
                mfa_token: m.mfa_token.expose().to_owned(),
                expires_in: m.expires_in,
            },
        ),
    }
}

/// A 302 to `location`.
pub(crate) fn redirect(location: String) -> Response {
    Response::empty(302)
        .with_header("Location", location)
        .with_header("Referrer-Policy", "no-referrer")
}
