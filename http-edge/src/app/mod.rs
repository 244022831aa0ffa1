//! The API application: routing, request ids, client addresses, rate
//! limits, and the translation between HTTP and engine commands.

pub mod handlers;
mod routes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_engine::ClientInfo;
use portcullis_engine::clock::Stopwatch;

use crate::bridge::Bridge;
use crate::clientip::{ForwardedHeader, TrustedProxies};
use crate::problem::{EdgeError, problem};
use crate::ratelimit::IpLimits;
use crate::server::{FrameError, Handled, Handler, Request, Response};
use crate::telemetry::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL};

pub use routes::ROUTES;

/// Longest `User-Agent` kept.
const USER_AGENT_MAX: usize = 256;
/// Longest accepted incoming `X-Request-Id`.
const REQUEST_ID_MAX: usize = 64;

/// Pre-rendered documents.
#[derive(Debug)]
pub struct Documents {
    /// `/openapi.json`.
    pub openapi: Arc<[u8]>,
    /// `/.well-known/openid-configuration`.
    pub discovery: Arc<[u8]>,
}

/// The API.
#[derive(Debug)]
pub struct App {
    pub(crate) bridge: Bridge,
    pub(crate) limits: IpLimits,
    pub(crate) proxies: TrustedProxies,
    pub(crate) forwarded_header: ForwardedHeader,
    pub(crate) docs: Documents,
    ids: RequestIds,
    metrics: HttpMetrics,
}

impl App {
    /// The API application. Install the metrics recorder before building it:
    /// the per-route metric handles are registered here.
    pub fn new(
        bridge: Bridge,
        limits: IpLimits,
        proxies: TrustedProxies,
        forwarded_header: ForwardedHeader,
        docs: Documents,
    ) -> App {
        App {
            bridge,
            limits,
            proxies,
            forwarded_header,
            docs,
            ids: RequestIds::new(),
            metrics: HttpMetrics::new(),
        }
    }

    /// Forgets recovered rate-limit entries (called periodically).
    pub fn sweep(&self) {
        self.limits.sweep();
    }

    pub(crate) fn client(&self, req: &Request<'_>) -> ClientInfo {
        ClientInfo {
            ip: Some(self.client_ip(req)),
            user_agent: req.header("user-agent").map(|ua| {
                String::from_utf8_lossy(ua)
                    .chars()
                    .take(USER_AGENT_MAX)
                    .collect()
            }),
        }
    }

    pub(crate) fn client_ip(&self, req: &Request<'_>) -> std::net::IpAddr {
        // Only the header the proxies are configured to write is read.
        let (forwarded, x_forwarded_for) = match self.forwarded_header {
            ForwardedHeader::Forwarded => ("forwarded", ""),
            ForwardedHeader::XForwardedFor => ("", "x-forwarded-for"),
        };
        self.proxies.client_ip(
            req.peer.ip(),
            req.headers_named(forwarded),
            req.headers_named(x_forwarded_for),
        )
    }
}

impl Handler for App {
    fn handle(&self, req: &Request<'_>) -> Handled {
        let request_id = self.ids.for_request(req);
        let t = Stopwatch::start();
        let (matched, result) = routes::dispatch(self, req);
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
        let unmatched = routes::Matched {
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

/// Request counters and latency histograms, registered once per route and
/// method so the hot path does no label lookups.
#[derive(Debug)]
struct HttpMetrics {
    /// `[route][method][status class]`, plus a last route for unmatched paths and
    /// framing errors and a last method for methods not allowed.
    counters: Vec<Vec<[metrics::Counter; 5]>>,
    /// `[route][status class]`.
    durations: Vec<[metrics::Histogram; 5]>,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl HttpMetrics {
    fn new() -> HttpMetrics {
        let mut counters = Vec::new();
        let mut durations = Vec::new();
        let routes = ROUTES.iter().map(|r| {
            (
                r.path,
                r.methods.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
            )
        });
        for (path, methods) in routes.chain(std::iter::once(("unmatched", Vec::new()))) {
            let per_method = methods
                .into_iter()
                .chain(std::iter::once("other"))
                .map(|m| {
                    CLASSES.map(|c| {
                        metrics::counter!(HTTP_REQUESTS_TOTAL, "route" => path, "method" => m, "status_class" => c)
                    })
                })
                .collect();
            counters.push(per_method);
            durations.push(CLASSES.map(|c| {
                metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => path, "status_class" => c)
            }));
        }
        HttpMetrics {
            counters,
            durations,
        }
    }

    fn record(&self, m: routes::Matched, status: u16, t: Stopwatch) {
        let route = m.route.unwrap_or(self.counters.len() - 1);
        let per_route = &self.counters[route];
        let method = m.method.unwrap_or(per_route.len() - 1);
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        per_route[method][class].increment(1);
        self.durations[route][class].record(t.elapsed_secs());
    }
}

/// Request ids: a valid incoming `X-Request-Id` is echoed, else a new one is made.
#[derive(Debug)]
pub(crate) struct RequestIds {
    seed: u64,
    counter: AtomicU64,
}

impl RequestIds {
    pub(crate) fn new() -> RequestIds {
        let mut seed = [0u8; 8];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed);
        RequestIds {
            seed: u64::from_le_bytes(seed),
            counter: AtomicU64::new(0),
        }
    }

    /// A problem answer under a new request id (requests that never reached a handler).
    pub(crate) fn answer(&self, err: EdgeError) -> Handled {
        let request_id = self.generate();
        Handled {
            response: problem(err, &request_id),
            request_id,
        }
    }

    pub(crate) fn generate(&self) -> String {
        // A bijective mix of a counter: unique in this process, not guessable in order.
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut x = n.wrapping_add(self.seed);
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        format!("{x:016x}")
    }

    pub(crate) fn for_request(&self, req: &Request<'_>) -> String {
        match req.header("x-request-id") {
            Some(v)
                if !v.is_empty()
                    && v.len() <= REQUEST_ID_MAX
                    && v.iter().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')
                    }) =>
            {
                // Checked ASCII above.
                String::from_utf8_lossy(v).into_owned()
            }
            _ => self.generate(),
        }
    }
}

/// A JSON response from a serializable value.
pub(crate) fn json<T: serde::Serialize>(status: u16, value: &T) -> Result<Response, EdgeError> {
    serde_json::to_vec(value)
        .map(|body| Response::json(status, body))
        .map_err(|e| {
            EdgeError::Auth(portcullis_engine::AuthError::Internal(format!(
                "cannot encode response: {e}"
            )))
        })
}
