//! The admin listener: `/metrics` (Prometheus text format), `/healthz`,
//! `/readyz`. Kept off the public port.

use metrics_exporter_prometheus::PrometheusHandle;

use crate::api::{liveness, readiness};
use crate::bridge::Bridge;
use crate::problem::{EdgeError, problem};
use crate::requestid::RequestIds;
use crate::server::{FrameError, Handled, Handler, Request, Response};

/// The admin application.
pub struct Admin {
    bridge: Bridge,
    metrics: Option<PrometheusHandle>,
    ids: RequestIds,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").finish_non_exhaustive()
    }
}

impl Admin {
    /// The admin application; without a metrics handle `/metrics` answers 404.
    pub fn new(bridge: Bridge, metrics: Option<PrometheusHandle>) -> Admin {
        Admin {
            bridge,
            metrics,
            ids: RequestIds::new(),
        }
    }

    fn route(&self, req: &Request<'_>) -> Result<Response, EdgeError> {
        let allow = "GET, HEAD";
        let known = matches!(req.path, "/metrics" | "/healthz" | "/readyz");
        if !known {
            return Err(EdgeError::NotFound);
        }
        if req.method != "GET" {
            return Err(EdgeError::MethodNotAllowed(allow));
        }
        match req.path {
            "/metrics" => match &self.metrics {
                Some(h) => {
                    let mut r = Response::json(200, h.render().into_bytes());
                    r.content_type = Some("text/plain; version=0.0.4; charset=utf-8");
                    Ok(r)
                }
                None => Err(EdgeError::NotFound),
            },
            "/healthz" => liveness(&self.bridge),
            _ => readiness(&self.bridge, true),
        }
    }
}

impl Handler for Admin {
    fn handle(&self, req: &Request<'_>) -> Handled {
        let request_id = self.ids.for_request(req);
        let response = self.route(req).unwrap_or_else(|e| problem(e, &request_id));
        Handled {
            response,
            request_id,
        }
    }

    fn reject(&self, error: FrameError) -> Handled {
        self.ids.answer(EdgeError::Frame(error))
    }

    fn timeout(&self) -> Handled {
        self.ids.answer(EdgeError::Timeout)
    }

    fn overloaded(&self) -> Handled {
        self.ids
            .answer(EdgeError::Auth(portcullis_engine::AuthError::Overloaded {
                retry_after_secs: 1,
            }))
    }
}
