//! `GET /readyz`: readiness.

use std::collections::BTreeMap;

use portcullis_engine::ops::health::{Readiness as ReadinessOp, ReadinessReport};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::Endpoint;
use crate::api::support::json;
use crate::app::App;
use crate::bridge::Bridge;
use crate::problem::EdgeError;
use crate::server::{Request, Response};

/// `GET /readyz`.
pub(crate) const ENDPOINT: Endpoint = Endpoint {
    method: "GET",
    path: "/readyz",
    handler: readyz,
    openapi: <Doc as utoipa::OpenApi>::openapi,
};

#[derive(utoipa::OpenApi)]
#[openapi(paths(readyz), components(schemas(Nodes)))]
struct Doc;

/// `GET /readyz` answer.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` (admin listener only: ready, but a cluster store
    /// has a database node this process cannot reach) or `not_ready`.
    pub status: &'static str,
    /// Each dependency and whether it is usable.
    #[schema(value_type = Object)]
    pub checks: std::collections::BTreeMap<&'static str, bool>,
    /// Admin listener only: for each cluster store, its database nodes this
    /// process reaches (`up`) and cannot reach (`down`).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(value_type = Object)]
    pub nodes: std::collections::BTreeMap<&'static str, Nodes>,
}

/// A cluster store's database nodes in a [`Readiness`] answer.
#[derive(Serialize, ToSchema)]
pub struct Nodes {
    /// Reached.
    pub up: usize,
    /// Known but not reached.
    pub down: usize,
}

/// Readiness: stores reachable, signing keys loaded, not shutting down.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready; `checks` says which dependency", body = Readiness),
    )
)]
pub fn readyz(app: &App, _req: &Request<'_>) -> Result<Response, EdgeError> {
    readiness(&app.bridge, false)
}

/// The readiness answer (shared with the admin listener). Only the admin
/// listener (`cluster_detail`) tells how many database nodes are down: on
/// the public port that would tell anyone when the cluster is one failure
/// from refusing logins.
pub fn readiness(bridge: &Bridge, cluster_detail: bool) -> Result<Response, EdgeError> {
    match bridge.call(ReadinessOp) {
        Ok(ReadinessReport { checks, mut nodes }) => {
            if !cluster_detail {
                nodes.clear();
            }
            let ready = checks.iter().all(|c| c.ok);
            let degraded = nodes.iter().any(|(_, n)| n.down > 0);
            let doc = Readiness {
                status: match (ready, degraded) {
                    (false, _) => "not_ready",
                    (true, true) => "degraded",
                    (true, false) => "ready",
                },
                checks: checks
                    .iter()
                    .map(|c| (c.name, c.ok))
                    .collect::<BTreeMap<_, _>>(),
                nodes: nodes
                    .iter()
                    .map(|(name, n)| {
                        (
                            *name,
                            Nodes {
                                up: n.up,
                                down: n.down,
                            },
                        )
                    })
                    .collect(),
            };
            let r = json(if ready { 200 } else { 503 }, &doc)?;
            Ok(if ready {
                r
            } else {
                r.with_header("Retry-After", "1")
            })
        }
        Err(_) => Ok(json(
            503,
            &Readiness {
                status: "not_ready",
                checks: BTreeMap::from([("engine", false)]),
                nodes: BTreeMap::new(),
            },
        )?
        .with_header("Retry-After", "1")),
    }
}
