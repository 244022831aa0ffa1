//! `GET /v1/sessions`: the user's live sessions.

use portcullis_engine::SessionView;
use portcullis_engine::ops::sessions::ListSessions;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::{bearer, call, json};
use crate::app::App;
use crate::problem::{EdgeError, Problem};
use crate::server::{Request, Response};

/// `GET /v1/sessions`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/v1/sessions",
    handler: list_sessions,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_sessions))]
struct Doc;

/// A session.
#[derive(Serialize, ToSchema)]
pub struct Session {
    /// Session id.
    pub id: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Last login or refresh, RFC 3339.
    pub last_used_at: String,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

impl From<&SessionView> for Session {
    fn from(s: &SessionView) -> Session {
        Session {
            id: s.id.clone(),
            created_at: s.created_at.clone(),
            last_used_at: s.last_used_at.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            current: s.current,
        }
    }
}

/// `GET /v1/sessions` answer.
#[derive(Serialize, ToSchema)]
pub struct SessionsResponse {
    /// Live sessions, oldest first.
    pub sessions: Vec<Session>,
}

/// The user's live sessions.
#[utoipa::path(
    get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses(
        (status = 200, description = "Live sessions, oldest first", body = SessionsResponse),
        (status = 401, description = "`missing_token` or `invalid_token`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub fn list_sessions(app: &App, req: &Request<'_>) -> Result<Response, EdgeError> {
    let list = call(
        app,
        ListSessions {
            bearer: bearer(req),
        },
    )?;
    json(
        200,
        &SessionsResponse {
            sessions: list.iter().map(Session::from).collect(),
        },
    )
}
