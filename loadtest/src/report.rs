//! One line per operation after goose's own report, and the pass/fail gates.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use goose::metrics::GooseMetrics;

/// What one request name did during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct OpSummary {
    /// goose's request name, e.g. `POST /v1/auth/refresh`.
    pub name: String,
    /// Requests sent.
    pub requests: usize,
    /// Requests goose counted as failed (non-2xx answer or transport error).
    pub failed: usize,
    /// Answers by status; `0` is a transport error (no answer).
    pub statuses: BTreeMap<u16, usize>,
    /// Requests per second over the run.
    pub per_sec: f64,
    /// Latency percentiles, milliseconds.
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

impl OpSummary {
    /// Answers that count against `--fail-on-5xx`: 5xx and transport errors.
    pub fn server_errors(&self) -> usize {
        self.statuses
            .iter()
            .filter(|&(&s, _)| s == 0 || s >= 500)
            .map(|(_, &n)| n)
            .sum()
    }
}

/// Summaries of every request name, in name order.
pub fn summarize(metrics: &GooseMetrics) -> Vec<OpSummary> {
    let secs = metrics.duration.max(1) as f64;
    let mut out: Vec<OpSummary> = metrics
        .requests
        .iter()
        .map(|(key, r)| {
            let t = &r.raw_data;
            let ms = |p: f32| t.percentile_us(p) as f64 / 1000.0;
            let mut statuses: BTreeMap<u16, usize> =
                r.status_code_counts.iter().map(|(&s, &n)| (s, n)).collect();
            // Without status-code metrics, failures are still counted.
            if statuses.is_empty() && r.fail_count > 0 {
                statuses.insert(0, r.fail_count);
            }
            OpSummary {
                name: key.clone(),
                requests: t.counter,
                failed: r.fail_count,
                statuses,
                per_sec: t.counter as f64 / secs,
                p50_ms: ms(0.50),
                p95_ms: ms(0.95),
                p99_ms: ms(0.99),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The table printed after goose's report.
pub fn render(scenario: &str, secs: usize, ops: &[OpSummary]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "\nportcullis-loadtest: scenario {scenario}, {secs} s");
    let _ = writeln!(
        s,
        "  {:<38} {:>10} {:>9} {:>9} {:>9}  errors by status",
        "request", "ops/s", "p50 ms", "p95 ms", "p99 ms"
    );
    for op in ops {
        let errors: Vec<String> = op
            .statuses
            .iter()
            .filter(|&(&st, _)| !(200..300).contains(&st))
            .map(|(st, n)| {
                if *st == 0 {
                    format!("transport:{n}")
                } else {
                    format!("{st}:{n}")
                }
            })
            .collect();
        let _ = writeln!(
            s,
            "  {:<38} {:>10.1} {:>9.2} {:>9.2} {:>9.2}  {}",
            op.name,
            op.per_sec,
            op.p50_ms,
            op.p95_ms,
            op.p99_ms,
            if errors.is_empty() {
                "0".to_owned()
            } else {
                errors.join(" ")
            }
        );
    }
    s
}

/// The thresholds a run must meet.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gates {
    pub max_error_rate: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub fail_on_5xx: bool,
}

/// Every gate the run failed, as one line each; empty when it passed.
/// A run that sent no request fails whenever any gate is set.
pub fn judge(ops: &[OpSummary], gates: &Gates) -> Vec<String> {
    let mut failures = Vec::new();
    let any_gate =
        gates.max_error_rate.is_some() || gates.max_p99_ms.is_some() || gates.fail_on_5xx;
    let requests: usize = ops.iter().map(|o| o.requests).sum();
    if any_gate && requests == 0 {
        failures.push("no request was sent".to_owned());
        return failures;
    }
    if let Some(max) = gates.max_error_rate {
        let failed: usize = ops.iter().map(|o| o.failed).sum();
        let rate = failed as f64 / requests as f64;
        if rate > max {
            failures.push(format!(
                "error rate {:.4} ({failed} of {requests}) is above --max-error-rate {max}",
                rate
            ));
        }
    }
    if let Some(max) = gates.max_p99_ms {
        for op in ops.iter().filter(|o| o.requests > 0 && o.p99_ms > max) {
            failures.push(format!(
                "{}: p99 {:.2} ms is above --max-p99-ms {max}",
                op.name, op.p99_ms
            ));
        }
    }
    if gates.fail_on_5xx {
        for op in ops.iter().filter(|o| o.server_errors() > 0) {
            failures.push(format!(
                "{}: {} answers were 5xx or transport errors (--fail-on-5xx)",
                op.name,
                op.server_errors()
            ));
        }
    }
    failures
}
