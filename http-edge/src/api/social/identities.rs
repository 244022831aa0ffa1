//! `/v1/users/me/identities`: the account's linked providers, starting a
//! link, and unlinking.

use portcullis_engine::ops::social::{ListIdentities, StartLink, Unlink};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::Endpoint;
use portcullis_engine::domain::Password;
use zeroize::Zeroizing;

use crate::api::support::{authenticated, bearer, call, json, limit, path_param, validation};
use crate::app::App;
use crate::json::{self as body, Field, optional, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `GET /v1/users/me/identities`.
pub(crate) const LIST: Endpoint = Endpoint {
    method: "GET",
    path: "/v1/users/me/identities",
    handler: list,
    openapi: <ListDoc as utoipa::OpenApi>::openapi,
};

/// `POST /v1/users/me/identities`.
pub(crate) const LINK: Endpoint = Endpoint {
    method: "POST",
    path: "/v1/users/me/identities",
    handler: start_link,
    openapi: <LinkDoc as utoipa::OpenApi>::openapi,
};

/// `DELETE /v1/users/me/identities/{provider}`.
pub(crate) const UNLINK: Endpoint = Endpoint {
    method: "DELETE",
    path: "/v1/users/me/identities/{provider}",
    handler: unlink,
    openapi: <UnlinkDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list), components(schemas(Identities, Identity)))]
struct ListDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(start_link), components(schemas(LinkRequest, LinkResponse)))]
struct LinkDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(unlink))]
struct UnlinkDoc;

/// One linked provider account.
#[derive(Serialize, ToSchema)]
pub struct Identity {
    /// The provider's name.
    pub provider: String,
    /// The provider's subject id.
    pub subject: String,
    /// The email the provider shared when it was linked.
    pub email: Option<String>,
    /// When it was linked (RFC 3339).
    pub linked_at: String,
}

/// `GET /v1/users/me/identities`.
#[derive(Serialize, ToSchema)]
pub struct Identities {
    /// The linked provider accounts.
    pub identities: Vec<Identity>,
}

/// The bearer's linked provider accounts.
#[utoipa::path(
    get, path = "/v1/users/me/identities", tag = "social", security(("bearer" = [])),
    responses(
        (status = 200, description = "The linked identities", body = Identities),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn list(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let ids = call(
        app,
        ListIdentities {
            bearer: bearer(req),
        },
    )?;
    json(
        200,
        &Identities {
            identities: ids
                .into_iter()
                .map(|i| Identity {
                    provider: i.provider,
                    subject: i.subject,
                    email: i.email,
                    linked_at: i.linked_at,
                })
                .collect(),
        },
    )
}

/// `POST /v1/users/me/identities`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// The PKCE challenge (S256) of the verifier the link will be finished
    /// with at `POST /v1/auth/social/token`.
    pub code_challenge: String,
    /// The account's current password (required when it has one; an
    /// account without one needs a sign-in of the last 10 minutes).
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Zeroizing<String>>,
}

impl LinkRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("code_challenge"), optional("password")];
}

/// A link token.
#[derive(Serialize, ToSchema)]
pub struct LinkResponse {
    /// Single use; pass it as `link_token` to
    /// `/v1/oauth/{provider}/authorize` with the same `code_challenge`.
    pub link_token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// Start linking a provider to the bearer's account: a short-lived,
/// single-use link token bound to the client's PKCE challenge (without the
/// matching verifier a leaked link token links nothing). Only for an
/// account whose email is verified, and with the current password (or,
/// for an account without one, a sign-in of the last 10 minutes): a
/// stolen access token alone links nothing. The owner is mailed a notice
/// when the link is made.
#[utoipa::path(
    post, path = "/v1/users/me/identities", tag = "social", security(("bearer" = [])),
    request_body = LinkRequest,
    responses(
        (status = 201, description = "A link token", body = LinkResponse),
        (status = 400, description = "`invalid_request` (no password for an account that has one)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token`, `invalid_token`, a wrong password (`invalid_credentials`), or a passwordless account's sign-in too old (`reauthentication_required`)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The account's email is not verified (`email_not_verified`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`, or the session's password re-entries locked (`too_many_attempts`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn start_link(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Social)?;
    let bearer = authenticated(req)?;
    let b: LinkRequest = body::parse(req, LinkRequest::FIELDS)?;
    let password = match b.password {
        None => None,
        Some(p) => Some(Password::parse("password", p).map_err(|e| validation(vec![e]))?),
    };
    let t = call(
        app,
        StartLink {
            bearer,
            code_challenge: b.code_challenge,
            password,
        },
    )?;
    json(
        201,
        &LinkResponse {
            link_token: t.link_token,
            expires_in: t.expires_in,
        },
    )
}

/// Unlink a provider from the bearer's account; refused when it is the
/// account's last way to sign in (no password, no other identity).
#[utoipa::path(
    delete, path = "/v1/users/me/identities/{provider}", tag = "social", security(("bearer" = [])),
    params(("provider" = String, Path, description = "The provider's name")),
    responses(
        (status = 204, description = "Unlinked"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No identity of this provider on the account (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account's last way to sign in (`last_sign_in_method`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`unavailable`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn unlink(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    call(
        app,
        Unlink {
            bearer: bearer(req),
            provider: path_param(UNLINK.path, req.path, "provider").to_owned(),
        },
    )?;
    Ok(Response::empty(204))
}
