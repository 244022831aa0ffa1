//! HTTP request counters and latency histograms per route, method and
//! status class.

use portcullis_engine::clock::Stopwatch;

use super::{Matched, ROUTES};
use crate::telemetry::{HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL};

/// Request counters and latency histograms, registered once per route and
/// method so the hot path does no label lookups.
#[derive(Debug)]
pub(super) struct HttpMetrics {
    /// `[route][method][status class]`, plus a last route for unmatched paths and
    /// framing errors and a last method for methods not allowed.
    counters: Vec<Vec<[metrics::Counter; 5]>>,
    /// `[route][status class]`.
    durations: Vec<[metrics::Histogram; 5]>,
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

impl HttpMetrics {
    pub(super) fn new() -> HttpMetrics {
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

    pub(super) fn record(&self, m: Matched, status: u16, t: Stopwatch) {
        let route = m.route.unwrap_or(self.counters.len() - 1);
        let per_route = &self.counters[route];
        let method = m.method.unwrap_or(per_route.len() - 1);
        let class = usize::from((status / 100).clamp(1, 5)) - 1;
        per_route[method][class].increment(1);
        self.durations[route][class].record(t.elapsed_secs());
    }
}
