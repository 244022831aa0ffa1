//! Logs (`tracing`, JSON lines by default) and metrics (the `metrics` facade
//! with a Prometheus recorder, rendered on the admin listener).

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use portcullis_engine::metrics as m;
use tracing_subscriber::EnvFilter;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Requests (counter; labels `route`, `method`, `status_class`).
pub const HTTP_REQUESTS_TOTAL: &str = "portcullis_http_requests_total";
/// Request latency, parse to last byte written (histogram, seconds; labels
/// `route`, `status_class`).
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "portcullis_http_request_duration_seconds";
/// Requests refused by the per-IP limit (counter).
pub const HTTP_RATE_LIMITED_TOTAL: &str = "portcullis_http_rate_limited_total";
/// Connections refused at a connection limit (counter; labels `server` =
/// api | admin, `limit` = total (`max_connections`) | per_ip
/// (`max_connections_per_ip`)).
pub const HTTP_CONNECTIONS_REJECTED_TOTAL: &str = "portcullis_http_connections_rejected_total";

/// Buckets for HTTP request durations (seconds): 100 µs .. 5 s.
pub const HTTP_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Installs the global log subscriber. Fails on a bad filter.
pub fn init_tracing(filter: &str, format: LogFormat) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("invalid --log / PORTCULLIS_LOG filter '{filter}': {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    result.map_err(|e| format!("cannot install the log subscriber: {e}"))
}

/// Installs the Prometheus recorder (once per process) and returns its handle.
pub fn install_metrics() -> Result<PrometheusHandle, String> {
    static HANDLE: std::sync::OnceLock<Result<PrometheusHandle, String>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(HTTP_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("portcullis_hash_".into()),
                        m::HASH_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("portcullis_store_".into()),
                        m::STORE_BUCKETS,
                    )
                })
                .and_then(|b| {
                    // A full name sorts before prefixes, so this wins over
                    // `portcullis_store_`.
                    b.set_buckets_for_metric(
                        Matcher::Full(m::GROUP_COMMIT_SIZE.into()),
                        m::GROUP_COMMIT_BUCKETS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Prefix("portcullis_redis_".into()),
                        m::STORE_BUCKETS,
                    )
                })
                .map_err(|e| format!("cannot configure metrics: {e}"))?;
            let handle = builder
                .install_recorder()
                .map_err(|e| format!("cannot install metrics recorder: {e}"))?;
            metrics::gauge!("portcullis_build_info", "version" => env!("CARGO_PKG_VERSION"))
                .set(1.0);
            m::register();
            describe_edge_metrics();
            metrics::counter!(HTTP_RATE_LIMITED_TOTAL).increment(0);
            for server in ["api", "admin"] {
                for limit in ["total", "per_ip"] {
                    metrics::counter!(HTTP_CONNECTIONS_REJECTED_TOTAL, "server" => server, "limit" => limit)
                        .increment(0);
                }
            }
            Ok(handle)
        })
        .clone()
}

fn describe_edge_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("portcullis_build_info", "Always 1; the version is a label");
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "API requests by route, method and status class"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "API request latency by route and status class"
    );
    describe_counter!(
        HTTP_RATE_LIMITED_TOTAL,
        "Requests refused by the per-IP limit"
    );
    describe_counter!(
        HTTP_CONNECTIONS_REJECTED_TOTAL,
        "Connections refused at a connection limit (limit: total or per_ip)"
    );
    describe_histogram!(
        m::GROUP_COMMIT_SIZE,
        "Operations written and fsynced together by one group commit (embedded store)"
    );
}
