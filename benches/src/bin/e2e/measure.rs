//! What is read around the windows: the server's own metrics, the
//! hypervisor's steal, and yardsticks measured in this process (a
//! signature, a thread wake-up, a raw password verification).

use std::time::Duration;

use portcullis_benches::thread_cpu;
use portcullis_engine::hashpool::{HashScheme, Hasher};

use crate::server::{Conn, Server, request};

/// The server's `/metrics` page (admin listener).
pub(crate) fn scrape(srv: &Server) -> String {
    let mut conn = Conn::open(srv.admin);
    let (status, body) = conn.call(&request("GET", "/metrics", None, None));
    assert_eq!(status, 200, "cannot scrape the server's metrics");
    String::from_utf8_lossy(&body).into_owned()
}

/// The sum of every series of `name` whose labels contain `labels` (e.g.
/// `kind="read"`; empty: every series).
pub(crate) fn metric_sum(page: &str, name: &str, labels: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']) && rest.contains(labels))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// CPU time the server has spent inside password hash jobs, from its own
/// `portcullis_hash_cpu_microseconds_total` on the admin port.
pub(crate) fn server_hash_cpu(srv: &Server) -> Duration {
    let micros = metric_sum(&scrape(srv), "portcullis_hash_cpu_microseconds_total", "");
    Duration::from_micros(micros as u64)
}

/// Ticks the hypervisor stole from this machine so far (`steal` in /proc/stat).
pub(crate) fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(8).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of one Ed25519 signature on this thread right now (ring, the
/// server's signer): the yardstick for how fast this shared machine is at
/// the moment of the run.
pub(crate) fn reference_sign() -> Duration {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let msg = [7u8; 300];
    let n = 2_000u32;
    let t = thread_cpu();
    for _ in 0..n {
        std::hint::black_box(pair.sign(&msg));
    }
    (thread_cpu() - t) / n
}

/// CPU time of one cross-thread wake-up round trip (two threads handing a
/// token back and forth through channels): the yardstick for what switching
/// threads costs on this machine right now, which the engine's hand-offs pay.
pub(crate) fn reference_wakeup() -> Duration {
    let n = 20_000u32;
    let (to_b, from_a) = std::sync::mpsc::channel::<u32>();
    let (to_a, from_b) = std::sync::mpsc::channel::<u32>();
    let b = std::thread::spawn(move || {
        let t = thread_cpu();
        while let Ok(x) = from_a.recv() {
            if to_a.send(x).is_err() {
                break;
            }
        }
        thread_cpu() - t
    });
    let t = thread_cpu();
    for i in 0..n {
        to_b.send(i).unwrap();
        from_b.recv().unwrap();
    }
    let a = thread_cpu() - t;
    drop(to_b);
    (a + b.join().unwrap()) / n
}

/// CPU time of one verification, averaged over `n` verifications on each of
/// `threads` threads running at once: the same parallelism as the server's
/// hash pool, so both see the same cache and memory-bandwidth contention.
pub(crate) fn raw_verify_cpu(scheme: &str, n: u32, threads: usize) -> Duration {
    let scheme: HashScheme = scheme.parse().unwrap();
    let mut h = Hasher::new();
    let stored = h.hash(&scheme, b"bench-password-0").unwrap();
    let total: Duration = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let stored = stored.clone();
                s.spawn(move || {
                    let mut h = Hasher::new();
                    assert!(h.verify(&stored, b"bench-password-0").unwrap());
                    let t = thread_cpu();
                    for _ in 0..n {
                        assert!(h.verify(&stored, b"bench-password-0").unwrap());
                    }
                    thread_cpu() - t
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total / (n * threads as u32)
}
