//! `GET /v1/passkeys`, `PATCH` and `DELETE /v1/passkeys/{id}`.

use portcullis_engine::ops::passkeys::{DeletePasskey, ListPasskeys, RenamePasskey};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Passkey;
use crate::api::Endpoint;
use crate::api::support::{authenticated, bearer, call, json, limit, path_param};
use crate::app::App;
use crate::json::{self as body, Field, required};
use crate::problem::{EdgeError, Problem};
use crate::ratelimit::Limited;
use crate::server::{Request, Response};

/// `GET /v1/passkeys`.
pub(crate) const LIST: Endpoint = Endpoint {
    method: "GET",
    path: "/v1/passkeys",
    handler: list,
    openapi: <ListDoc as utoipa::OpenApi>::openapi,
};

/// `PATCH /v1/passkeys/{id}`.
pub(crate) const RENAME: Endpoint = Endpoint {
    method: "PATCH",
    path: "/v1/passkeys/{id}",
    handler: rename,
    openapi: <RenameDoc as utoipa::OpenApi>::openapi,
};

/// `DELETE /v1/passkeys/{id}`.
pub(crate) const DELETE: Endpoint = Endpoint {
    method: "DELETE",
    path: "/v1/passkeys/{id}",
    handler: delete,
    openapi: <DeleteDoc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list), components(schemas(Passkeys, Passkey)))]
struct ListDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(rename), components(schemas(RenameRequest)))]
struct RenameDoc;

#[derive(utoipa::OpenApi)]
#[openapi(paths(delete))]
struct DeleteDoc;

/// `GET /v1/passkeys`.
#[derive(Serialize, ToSchema)]
pub struct Passkeys {
    /// The account's passkeys, oldest first.
    pub passkeys: Vec<Passkey>,
}

/// The bearer's passkeys.
#[utoipa::path(
    get, path = "/v1/passkeys", tag = "passkeys", security(("bearer" = [])),
    responses(
        (status = 200, description = "The passkeys", body = Passkeys),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn list(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let all = call(
        app,
        ListPasskeys {
            bearer: bearer(req),
        },
    )?;
    json(
        200,
        &Passkeys {
            passkeys: all.into_iter().map(Passkey::from).collect(),
        },
    )
}

/// `PATCH /v1/passkeys/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    /// The new name (1 to 64 characters).
    pub name: String,
}

impl RenameRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[required("name")];
}

/// Rename one of the bearer's passkeys.
#[utoipa::path(
    patch, path = "/v1/passkeys/{id}", tag = "passkeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The passkey's id (base64url)")),
    request_body = RenameRequest,
    responses(
        (status = 200, description = "Renamed", body = Passkey),
        (status = 400, description = "`invalid_request`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such passkey on the account (`not_found`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn rename(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    let bearer = authenticated(req)?;
    let b: RenameRequest = body::parse(req, RenameRequest::FIELDS)?;
    let p = call(
        app,
        RenamePasskey {
            bearer,
            id: path_param(RENAME.path, req.path, "id").to_owned(),
            name: b.name,
        },
    )?;
    json(200, &Passkey::from(p))
}

/// Delete one of the bearer's passkeys; refused when it is the account's
/// last way to sign in (no password, no linked provider, no other
/// passkey). The owner is mailed a notice.
#[utoipa::path(
    delete, path = "/v1/passkeys/{id}", tag = "passkeys", security(("bearer" = [])),
    params(("id" = String, Path, description = "The passkey's id (base64url)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such passkey on the account (`not_found`)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The account's last way to sign in (`last_sign_in_method`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn delete(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    limit(app, req, Limited::Credential)?;
    call(
        app,
        DeletePasskey {
            bearer: bearer(req),
            id: path_param(DELETE.path, req.path, "id").to_owned(),
        },
    )?;
    Ok(Response::empty(204))
}
