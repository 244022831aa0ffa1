//! Elapsed time for latency metrics, and the millisecond unit of every
//! stored time. Metrics measure real time; every decision a store makes
//! reads the caller's injected clock (`now_ms`).

use std::time::Duration;

/// `d` in whole milliseconds (saturating): the unit of every stored time,
/// for every crate of the workspace.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Measures one operation's latency.
pub(crate) struct Stopwatch(std::time::Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)] // latency metrics only, never a decision
    pub(crate) fn start() -> Stopwatch {
        Stopwatch(std::time::Instant::now())
    }

    pub(crate) fn elapsed_secs(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
