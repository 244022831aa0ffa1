//! Elapsed time for latency metrics. Metrics measure real time; every
//! decision a store makes reads the caller's injected clock (`now_ms`).

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
