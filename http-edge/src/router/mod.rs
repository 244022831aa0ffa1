//! The router: method and path to endpoint, built once from
//! [`crate::api::ENDPOINTS`]; and [`Api`], the API listener's handler, which
//! routes each request, answers problems, and counts requests per route.

mod metrics;

use std::sync::LazyLock;

use portcullis_engine::clock::Stopwatch;

use self::metrics::HttpMetrics;
use crate::api::{ENDPOINTS, HandlerFn};
use crate::app::App;
use crate::problem::{EdgeError, problem};
use crate::requestid::RequestIds;
use crate::server::{FrameError, Handled, Handler, Request, Response};

/// The API listener's handler.
#[derive(Debug)]
pub struct Api {
    app: App,
    ids: RequestIds,
    metrics: HttpMetrics,
}

impl Api {
    /// The API over `app`. Install the metrics recorder before building it:
    /// the per-route metric handles are registered here.
    pub fn new(app: App) -> Api {
        Api {
            app,
            ids: RequestIds::new(),
            metrics: HttpMetrics::new(),
        }
    }

    /// The handlers' state.
    pub fn app(&self) -> &App {
        &self.app
    }
}

impl Handler for Api {
    fn handle(&self, req: &Request<'_>) -> Handled {
        let request_id = self.ids.for_request(req);
        let t = Stopwatch::start();
        let (matched, result) = dispatch(&self.app, req);
        let mut response = match result {
            Ok(r) => r,
            Err(e) => problem(e, &request_id),
        };
        if response.header("cache-control").is_none() {
            response = response.with_header("Cache-Control", "no-store");
        }
        response = response.with_header("X-Content-Type-Options", "nosniff");
        self.metrics.record(matched, response.status, t);
        Handled {
            response,
            request_id,
        }
    }

    fn reject(&self, error: FrameError) -> Handled {
        let unmatched = Matched {
            route: None,
            method: None,
        };
        self.metrics
            .record(unmatched, error.status(), Stopwatch::start());
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

/// A path and the endpoints served on it.
#[derive(Debug)]
pub struct Route {
    /// Path template (the metrics label).
    pub path: &'static str,
    /// Methods and their handlers, in the order of [`ENDPOINTS`].
    pub methods: Vec<(&'static str, HandlerFn)>,
    /// The `Allow` header value (`GET` implies `HEAD`).
    pub allow: String,
}

/// Every path of the API, in the order of its first endpoint.
pub static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let mut routes: Vec<Route> = Vec::new();
    for e in ENDPOINTS {
        let i = match routes.iter().position(|r| r.path == e.path) {
            Some(i) => i,
            None => {
                routes.push(Route {
                    path: e.path,
                    methods: Vec::new(),
                    allow: String::new(),
                });
                routes.len() - 1
            }
        };
        routes[i].methods.push((e.method, e.handler));
    }
    for r in &mut routes {
        r.allow = r
            .methods
            .iter()
            .flat_map(|(m, _)| match *m {
                "GET" => &["GET", "HEAD"][..],
                _ => std::slice::from_ref(m),
            })
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
    }
    routes
});

pub(crate) fn matches(template: &str, path: &str) -> bool {
    // Most routes have no parameter: one comparison, no splitting, on the
    // path every request takes.
    if !template.contains('{') {
        return template == path;
    }
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) if is_param(ts) => {
                if ps.is_empty() {
                    return false;
                }
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return false,
        }
    }
}

/// Whether a template segment is a parameter (`{name}`).
pub(crate) fn is_param(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

/// Which route and method served a request (indices into [`ROUTES`]), for metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Matched {
    /// Index into `ROUTES`; `None` when no path matched.
    pub route: Option<usize>,
    /// Index into the route's methods; `None` when the method is not allowed.
    pub method: Option<usize>,
}

/// Finds and runs the handler.
fn dispatch(app: &App, req: &Request<'_>) -> (Matched, Result<Response, EdgeError>) {
    let Some((ri, route)) = ROUTES
        .iter()
        .enumerate()
        .find(|(_, r)| matches(r.path, req.path))
    else {
        return (
            Matched {
                route: None,
                method: None,
            },
            Err(EdgeError::NotFound),
        );
    };
    match route
        .methods
        .iter()
        .enumerate()
        .find(|(_, (m, _))| *m == req.method)
    {
        Some((mi, (_, handler))) => (
            Matched {
                route: Some(ri),
                method: Some(mi),
            },
            handler(app, req),
        ),
        None => (
            Matched {
                route: Some(ri),
                method: None,
            },
            Err(EdgeError::MethodNotAllowed(&route.allow)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_one_segment() {
        assert!(matches("/v1/sessions/{id}", "/v1/sessions/abc"));
        assert!(!matches("/v1/sessions/{id}", "/v1/sessions/"));
        assert!(!matches("/v1/sessions/{id}", "/v1/sessions/a/b"));
        assert!(matches(
            "/v1/oauth/{provider}/callback",
            "/v1/oauth/corp/callback"
        ));
        assert!(!matches(
            "/v1/oauth/{provider}/callback",
            "/v1/oauth//callback"
        ));
        assert!(!matches(
            "/v1/oauth/{provider}/callback",
            "/v1/oauth/a/b/callback"
        ));
        assert!(!matches(
            "/v1/oauth/{provider}/callback",
            "/v1/oauth/corp/authorize"
        ));
        assert!(matches("/healthz", "/healthz"));
        assert!(!matches("/healthz", "/healthz/"));
    }

    #[test]
    fn allow_lists_every_method_of_a_path() {
        let allow = |p: &str| ROUTES.iter().find(|r| r.path == p).unwrap().allow.clone();
        assert_eq!(allow("/v1/users/me"), "GET, HEAD, PATCH");
        assert_eq!(allow("/v1/sessions"), "GET, HEAD");
        assert_eq!(allow("/v1/sessions/{id}"), "DELETE");
        assert_eq!(allow("/v1/auth/login"), "POST");
    }
}
