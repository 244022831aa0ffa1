//! `PATCH /v1/users/me`: change the signed-in user's profile.

use portcullis_engine::domain;
use portcullis_engine::ops::users::{Patch, ProfilePatch, UpdateMe};
use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::{authenticated, call, json, validation};
use crate::app::App;
use crate::dto::User;
use crate::json::{self as body, Field, nullable};
use crate::problem::{EdgeError, Problem};
use crate::server::{Request, Response};

/// `PATCH /v1/users/me`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "PATCH",
    path: "/v1/users/me",
    handler: update_me,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(update_me))]
struct Doc;

/// `PATCH /v1/users/me`: absent fields stay, `null` clears.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// Display name (1 to 200 characters), or null to clear it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// An https:// URL (at most 2048 bytes), or null to clear it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub picture_url: Option<Option<String>>,
}

impl UpdateMeRequest {
    /// The body's fields, as its handler reads them.
    pub const FIELDS: &'static [Field] = &[nullable("name"), nullable("picture_url")];
}

/// Change the signed-in user's profile.
#[utoipa::path(
    patch, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 400, description = "Invalid request (`invalid_request`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn update_me(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let token = authenticated(req)?;
    let b: UpdateMeRequest = body::parse(req, UpdateMeRequest::FIELDS)?;
    let mut errors = Vec::new();
    let name = match b.name {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(n)) => domain::parse_name("name", &n).map_or_else(
            |e| {
                errors.push(e);
                Patch::Keep
            },
            Patch::Set,
        ),
    };
    let picture_url = match b.picture_url {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(u)) => domain::parse_picture_url("picture_url", &u).map_or_else(
            |e| {
                errors.push(e);
                Patch::Keep
            },
            Patch::Set,
        ),
    };
    if !errors.is_empty() {
        return Err(validation(errors));
    }
    let user = call(
        app,
        UpdateMe {
            bearer: token,
            patch: ProfilePatch { name, picture_url },
        },
    )?;
    json(200, &User::from(&*user))
}

fn double_option<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}
