//! Measured windows: client threads drive one step each over their own
//! connection, for a time or a fixed amount of work, while the server's CPU
//! and the hypervisor's steal are read around them; and the table row.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use portcullis_benches::{percentile, process_cpu, process_cpu_precise};

use crate::measure::steal_ticks;
use crate::server::{Conn, Server};

/// What a worker carries between operations.
#[derive(Clone)]
pub(crate) struct User {
    pub(crate) email: String,
    pub(crate) password: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
    /// The user's passkey, once the passkey phase has registered one.
    pub(crate) passkey: Option<std::sync::Arc<std::sync::Mutex<crate::steps::Device>>>,
}

pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) steal_pct: f64,
    pub(crate) concurrency: usize,
    pub(crate) ok: u64,
    pub(crate) errors: BTreeMap<u16, u64>,
    pub(crate) secs: f64,
    pub(crate) cpu: Duration,
    pub(crate) cpu_precise: Duration,
    pub(crate) lat_us: Vec<u64>,
    /// Latencies of the 503 answers (refused for load).
    pub(crate) lat_503_us: Vec<u64>,
}

impl Outcome {
    pub(crate) fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
    pub(crate) fn cpu_precise_us_per_op(&self) -> f64 {
        self.cpu_precise.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
}

pub(crate) fn run<F>(name: &str, srv: &Server, users: &mut [User], secs: u64, step: F) -> Outcome
where
    F: Fn(&mut User, &mut Conn) -> u16 + Sync,
{
    run_with(name, srv, users, secs, step, false)
}

/// [`run`]; with `polite`, a client answered 503 waits the `Retry-After`
/// (1 s, plus up to 250 ms of jitter) before its next request, as a
/// well-behaved client does (the wait is not part of any latency).
pub(crate) fn run_with<F>(
    name: &str,
    srv: &Server,
    users: &mut [User],
    secs: u64,
    step: F,
    polite: bool,
) -> Outcome
where
    F: Fn(&mut User, &mut Conn) -> u16 + Sync,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    let meter = Meter::start(srv);
    let results: Vec<Worker> = std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .iter_mut()
            .map(|u| {
                let step = &step;
                scope.spawn(move || {
                    let mut conn = Conn::open(srv.api);
                    let mut lat = Vec::with_capacity(100_000);
                    let mut lat_503 = Vec::new();
                    let mut jitter: u64 = 0x9e37_79b9_7f4a_7c15 ^ (u as *const User as u64);
                    let mut statuses = BTreeMap::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let status = step(u, &mut conn);
                        *statuses.entry(status).or_insert(0u64) += 1;
                        if (200..300).contains(&status) {
                            lat.push(t.elapsed().as_micros() as u64);
                        } else if status == 503 {
                            lat_503.push(t.elapsed().as_micros() as u64);
                            if polite {
                                // Retry-After (1 s) plus up to 250 ms of
                                // jitter, so refused clients do not return
                                // as one herd.
                                jitter ^= jitter << 13;
                                jitter ^= jitter >> 7;
                                jitter ^= jitter << 17;
                                std::thread::sleep(Duration::from_millis(1000 + jitter % 250));
                            }
                        }
                    }
                    (lat, lat_503, statuses)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    meter.finish(name, srv, users.len(), results)
}

/// [`run`] with a fixed amount of work: every user takes exactly one step,
/// the users split over `concurrency` connections.
pub(crate) fn run_each<F>(
    name: &str,
    srv: &Server,
    users: &mut [User],
    concurrency: usize,
    step: F,
) -> Outcome
where
    F: Fn(&mut User, &mut Conn) -> u16 + Sync,
{
    let per = users.len().div_ceil(concurrency.max(1)).max(1);
    let meter = Meter::start(srv);
    let results: Vec<Worker> = std::thread::scope(|scope| {
        let handles: Vec<_> = users
            .chunks_mut(per)
            .map(|chunk| {
                let step = &step;
                scope.spawn(move || {
                    let mut conn = Conn::open(srv.api);
                    let mut lat = Vec::with_capacity(chunk.len());
                    let mut lat_503 = Vec::new();
                    let mut statuses = BTreeMap::new();
                    for u in chunk {
                        let t = Instant::now();
                        let status = step(u, &mut conn);
                        *statuses.entry(status).or_insert(0u64) += 1;
                        if (200..300).contains(&status) {
                            lat.push(t.elapsed().as_micros() as u64);
                        } else if status == 503 {
                            lat_503.push(t.elapsed().as_micros() as u64);
                        }
                    }
                    (lat, lat_503, statuses)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    meter.finish(name, srv, concurrency.min(users.len()), results)
}

/// What one client thread brings back: latencies of its successes, of its
/// 503s, and the count of each status.
type Worker = (Vec<u64>, Vec<u64>, BTreeMap<u16, u64>);

/// The clocks read at the start of a measured window.
struct Meter {
    steal0: u64,
    cpu0: Duration,
    cpup0: Duration,
    t0: Instant,
}

impl Meter {
    fn start(srv: &Server) -> Meter {
        Meter {
            steal0: steal_ticks(),
            cpu0: process_cpu(srv.pid).unwrap(),
            cpup0: process_cpu_precise(srv.pid).unwrap(),
            t0: Instant::now(),
        }
    }

    fn finish(self, name: &str, srv: &Server, concurrency: usize, results: Vec<Worker>) -> Outcome {
        let secs = self.t0.elapsed().as_secs_f64();
        let steal_pct = (steal_ticks() - self.steal0) as f64
            / portcullis_benches::clock_ticks() as f64
            / secs
            / std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
            * 100.0;
        let cpu = process_cpu(srv.pid).unwrap() - self.cpu0;
        let cpu_precise = process_cpu_precise(srv.pid).unwrap() - self.cpup0;
        let mut lat_us = Vec::new();
        let mut lat_503_us = Vec::new();
        let mut errors = BTreeMap::new();
        let mut ok = 0;
        for (l, l503, st) in results {
            lat_us.extend(l);
            lat_503_us.extend(l503);
            for (s, n) in st {
                if (200..300).contains(&s) {
                    ok += n;
                } else {
                    *errors.entry(s).or_insert(0) += n;
                }
            }
        }
        lat_us.sort_unstable();
        lat_503_us.sort_unstable();
        Outcome {
            name: name.to_owned(),
            steal_pct,
            concurrency,
            ok,
            errors,
            secs,
            cpu,
            cpu_precise,
            lat_us,
            lat_503_us,
        }
    }
}

pub(crate) fn print(o: &Outcome) {
    let p50 = percentile(&o.lat_us, 50.0) as f64 / 1000.0;
    let p99 = percentile(&o.lat_us, 99.0) as f64 / 1000.0;
    let errors = if o.errors.is_empty() {
        "none".to_owned()
    } else {
        o.errors
            .iter()
            .map(|(s, n)| format!("{s}x{n}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "| {:<34} | {:>4} | {:>8} | {:>9.0} | {:>7.2} | {:>7.2} | {:>10.1} | {:>10.1} | {:>6.1} | {:<8} |",
        o.name,
        o.concurrency,
        o.ok,
        o.ok as f64 / o.secs,
        p50,
        p99,
        o.cpu_us_per_op(),
        o.cpu_precise_us_per_op(),
        o.steal_pct,
        errors
    );
}
