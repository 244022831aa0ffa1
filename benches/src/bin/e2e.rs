//! End-to-end benchmark: starts the real `portcullis` binary, seeds users,
//! drives login, refresh and me over keep-alive connections, and reports
//! ops/s, latency percentiles and the **server's CPU time per operation**
//! read from `/proc/<pid>` (so the load generator's own CPU is not counted).
//!
//! The login overhead ratio divides the server's CPU per login by the CPU of
//! one raw verification with the same parameters, measured in this process
//! during the same run. A second server with a deliberately cheap hash shows
//! the engine's own cost per login, which the OWASP hash would hide.
//!
//! The `scylla` phase (`--phases scylla`, not run by default: it needs
//! Java 17 and Maven for the storage crate's Cassandra fixture, and about a
//! minute more) puts the users in a real CQL database, one Apache Cassandra
//! 5 node, with the tokens in a Redis Cluster, the production shape. For
//! register, login, refresh, `me` and password change it prints the CQL
//! reads, writes and lightweight transactions each issues (from the server's
//! own `portcullis_cql_statements_total`), the server's CPU and Cassandra's
//! CPU per operation. It is a phase rather than a global `--user-store`
//! switch because every phase builds its own server for what it measures:
//! the login overhead ratio and the overload phase are about the hash pool
//! and stay on the embedded stores, and a phase combines with the others in
//! one run (`--phases cheap,redis,scylla` compares a login's server CPU with
//! users embedded and in Cassandra on the same machine state).
//!
//! ```text
//! cargo build --release -p portcullis-edge -p portcullis-benches
//! target/release/e2e [--secs 10] [--concurrency 32] [--phases ...] [--scylla-ops 640]
//! ```

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_benches::{percentile, process_cpu, process_cpu_precise, thread_cpu};
use portcullis_engine::hashpool::{HashScheme, Hasher};
use portcullis_storage::redis::fixture::RedisCluster;
use serde_json::{Value, json};

const OWASP: &str = "argon2id:m=19456,t=2,p=1";
const CHEAP: &str = "argon2id:m=8,t=1,p=1";

struct Server {
    child: Child,
    api: SocketAddr,
    admin: SocketAddr,
    pid: u32,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(bin: &PathBuf, hash: &str, extra: &[(&str, &str)]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_PASSWORD_HASH", hash)
            .env("PORTCULLIS_IP_RATE_LIMIT", "off")
            .env("PORTCULLIS_LOG", "warn,portcullis=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("portcullis listening")
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(api) = v["api"].as_str().and_then(|a| a.parse::<SocketAddr>().ok())
                    && let Some(admin) = v["admin"]
                        .as_str()
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send((api, admin));
                }
            }
        });
        let (api, admin) = rx
            .recv_timeout(Duration::from_secs(60))
            .context("server did not start")?;
        let pid = child.id();
        Ok(Server {
            child,
            api,
            admin,
            pid,
            _dir: dir,
        })
    }
}

impl Server {
    /// Waits until `/readyz` answers 200: a server with a shared store may
    /// listen before it has connected to it.
    fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut conn = Conn::open(self.admin);
            if conn.call(&request("GET", "/readyz", None, None)).0 == 200 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server was not ready within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive connection.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    fn call(&mut self, req: &[u8]) -> (u16, Vec<u8>) {
        self.stream.write_all(req).expect("write");
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = r.parse(&self.buf) {
                let status = r.code.unwrap_or(0);
                let len: usize = r
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < n + len {
                    let k = self.stream.read(&mut chunk).expect("read");
                    assert!(k > 0, "server closed the connection");
                    self.buf.extend_from_slice(&chunk[..k]);
                }
                return (status, self.buf[n..n + len].to_vec());
            }
            let k = self.stream.read(&mut chunk).expect("read");
            assert!(k > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..k]);
        }
    }
}

fn request(method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> Vec<u8> {
    let body = body.map(Value::to_string);
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    if let Some(t) = bearer {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = &body {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    r.push_str("\r\n");
    if let Some(b) = body {
        r.push_str(&b);
    }
    r.into_bytes()
}

/// What a worker carries between operations.
#[derive(Clone)]
struct User {
    email: String,
    password: String,
    access: String,
    refresh: String,
}

struct Outcome {
    name: String,
    steal_pct: f64,
    concurrency: usize,
    ok: u64,
    errors: BTreeMap<u16, u64>,
    secs: f64,
    cpu: Duration,
    cpu_precise: Duration,
    lat_us: Vec<u64>,
    /// Latencies of the 503 answers (refused for load).
    lat_503_us: Vec<u64>,
}

impl Outcome {
    fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
    fn cpu_precise_us_per_op(&self) -> f64 {
        self.cpu_precise.as_secs_f64() * 1e6 / self.ok.max(1) as f64
    }
}

fn run<F>(name: &str, srv: &Server, users: &mut [User], secs: u64, step: F) -> Outcome
where
    F: Fn(&mut User, &mut Conn) -> u16 + Sync,
{
    run_with(name, srv, users, secs, step, false)
}

/// [`run`]; with `polite`, a client answered 503 waits the `Retry-After`
/// (1 s, plus up to 250 ms of jitter) before its next request, as a
/// well-behaved client does (the wait is not part of any latency).
fn run_with<F>(
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
fn run_each<F>(name: &str, srv: &Server, users: &mut [User], concurrency: usize, step: F) -> Outcome
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

/// The server's `/metrics` page (admin listener).
fn scrape(srv: &Server) -> String {
    let mut conn = Conn::open(srv.admin);
    let (status, body) = conn.call(&request("GET", "/metrics", None, None));
    assert_eq!(status, 200, "cannot scrape the server's metrics");
    String::from_utf8_lossy(&body).into_owned()
}

/// The sum of every series of `name` whose labels contain `labels` (e.g.
/// `kind="read"`; empty: every series).
fn metric_sum(page: &str, name: &str, labels: &str) -> f64 {
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
fn server_hash_cpu(srv: &Server) -> Duration {
    let micros = metric_sum(&scrape(srv), "portcullis_hash_cpu_microseconds_total", "");
    Duration::from_micros(micros as u64)
}

/// Ticks the hypervisor stole from this machine so far (`steal` in /proc/stat).
fn steal_ticks() -> u64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().next().map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(8).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// CPU time of one Ed25519 signature on this thread right now (ring, the
/// server's signer): the yardstick for how fast this shared machine is at
/// the moment of the run.
fn reference_sign() -> Duration {
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
fn reference_wakeup() -> Duration {
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

fn seed(srv: &Server, n: usize, tag: &str) -> Vec<User> {
    let mut users = Vec::new();
    let mut conn = Conn::open(srv.api);
    for i in 0..n {
        let email = format!("bench-{tag}-{i}@example.com");
        let password = format!("bench-password-{i}");
        let (status, body) = conn.call(&request(
            "POST",
            "/v1/auth/register",
            Some(&json!({"email": email, "password": password})),
            None,
        ));
        assert_eq!(
            status,
            201,
            "seeding failed: {}",
            String::from_utf8_lossy(&body)
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        users.push(User {
            email,
            password,
            access: v["access_token"].as_str().unwrap().to_owned(),
            refresh: v["refresh_token"].as_str().unwrap().to_owned(),
        });
    }
    users
}

fn login_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/login",
        Some(&json!({"email": u.email, "password": u.password})),
        None,
    ));
    // Keep the newest session, as a client does: a user has at most 100,
    // and the least recently used end.
    if s == 200
        && let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let (Some(a), Some(r)) = (v["access_token"].as_str(), v["refresh_token"].as_str())
    {
        u.access = a.to_owned();
        u.refresh = r.to_owned();
    }
    s
}

fn refresh_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/refresh",
        Some(&json!({"refresh_token": u.refresh})),
        None,
    ));
    if s == 200 {
        let v: Value = serde_json::from_slice(&body).unwrap();
        u.refresh = v["refresh_token"].as_str().unwrap().to_owned();
        u.access = v["access_token"].as_str().unwrap().to_owned();
    }
    s
}

fn me_step(u: &mut User, c: &mut Conn) -> u16 {
    c.call(&request("GET", "/v1/users/me", None, Some(&u.access)))
        .0
}

/// CPU time of one verification, averaged over `n` verifications on each of
/// `threads` threads running at once: the same parallelism as the server's
/// hash pool, so both see the same cache and memory-bandwidth contention.
fn raw_verify_cpu(scheme: &str, n: u32, threads: usize) -> Duration {
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

fn print(o: &Outcome) {
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

/// What the ScyllaDB phase reads before and after each window: the server's
/// `portcullis_cql_statements_total` by kind, its mail sent, Cassandra's CPU.
#[derive(Clone, Copy)]
struct CqlSample {
    at: Instant,
    /// reads, writes, LWTs.
    cql: [f64; 3],
    mail_sent: f64,
    cassandra: Duration,
}

impl CqlSample {
    fn take(srv: &Server, cassandra_pid: u32) -> CqlSample {
        let page = scrape(srv);
        let cql = ["read", "write", "lwt"].map(|k| {
            metric_sum(
                &page,
                "portcullis_cql_statements_total",
                &format!("kind=\"{k}\""),
            )
        });
        CqlSample {
            at: Instant::now(),
            cql,
            mail_sent: metric_sum(&page, "portcullis_mail_messages_total", "outcome=\"sent\""),
            cassandra: process_cpu(cassandra_pid).unwrap_or_default(),
        }
    }
}

/// What happened between two samples.
#[derive(Clone, Copy)]
struct CqlDelta {
    secs: f64,
    cql: [f64; 3],
    mail_sent: f64,
    cassandra: Duration,
}

impl CqlDelta {
    fn between(a: &CqlSample, b: &CqlSample) -> CqlDelta {
        CqlDelta {
            secs: (b.at - a.at).as_secs_f64(),
            cql: [0, 1, 2].map(|i| b.cql[i] - a.cql[i]),
            mail_sent: b.mail_sent - a.mail_sent,
            cassandra: b.cassandra.saturating_sub(a.cassandra),
        }
    }

    fn plus(self, o: CqlDelta) -> CqlDelta {
        CqlDelta {
            secs: self.secs + o.secs,
            cql: [0, 1, 2].map(|i| self.cql[i] + o.cql[i]),
            mail_sent: self.mail_sent + o.mail_sent,
            cassandra: self.cassandra + o.cassandra,
        }
    }

    /// Statements per op after taking away what the idle server issues
    /// in the same time (the mailer's outbox scan, the availability ping).
    fn per_op(&self, idle: &CqlDelta, ops: f64) -> [f64; 3] {
        [0, 1, 2].map(|i| {
            let v = (self.cql[i] - idle.cql[i] / idle.secs * self.secs) / ops.max(1.0);
            // No "-0.00" for a residue of the idle estimate.
            if v.abs() < 0.005 { 0.0 } else { v }
        })
    }

    /// Cassandra CPU µs per op, its idle CPU over the same time taken away.
    fn cassandra_us(&self, idle: &CqlDelta, ops: f64) -> f64 {
        let idle_us = idle.cassandra.as_secs_f64() * 1e6 / idle.secs * self.secs;
        (self.cassandra.as_secs_f64() * 1e6 - idle_us) / ops.max(1.0)
    }
}

/// One line of the CQL table.
struct CqlRow {
    name: String,
    ops: f64,
    server_us: f64,
    cassandra_us: f64,
    per_op: [f64; 3],
}

fn print_cql_rows(rows: &[CqlRow]) {
    println!();
    println!(
        "| {:<44} | {:>6} | {:>11} | {:>14} | {:>8} | {:>8} | {:>8} |",
        "operation (users in Cassandra, tokens in Redis)",
        "ops",
        "server µs/op",
        "Cassandra µs/op",
        "reads/op",
        "writes/op",
        "LWTs/op"
    );
    println!(
        "|{:-<46}|{:->8}|{:->13}|{:->16}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:<44} | {:>6} | {:>11} | {:>14.1} | {:>8.2} | {:>8.2} | {:>8.2} |",
            r.name,
            r.ops,
            if r.server_us.is_nan() {
                "-".to_owned()
            } else {
                format!("{:.1}", r.server_us)
            },
            r.cassandra_us,
            r.per_op[0],
            r.per_op[1],
            r.per_op[2]
        );
    }
}

fn register_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/register",
        Some(&json!({"email": u.email, "password": u.password})),
        None,
    ));
    if s == 201
        && let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let (Some(a), Some(r)) = (v["access_token"].as_str(), v["refresh_token"].as_str())
    {
        u.access = a.to_owned();
        u.refresh = r.to_owned();
    }
    s
}

fn change_password_step(u: &mut User, c: &mut Conn) -> u16 {
    let new = format!("{}-new", u.password);
    let (s, _) = c.call(&request(
        "POST",
        "/v1/password/change",
        Some(&json!({"current_password": u.password, "new_password": new})),
        Some(&u.access),
    ));
    if s == 204 {
        u.password = new;
    }
    s
}

/// Users not registered yet: `bench-scylla-<tag>-<i>@example.com`.
fn fresh_users(n: usize, tag: &str) -> Vec<User> {
    (0..n)
        .map(|i| User {
            email: format!("bench-scylla-{tag}-{i}@example.com"),
            password: format!("scylla-secret-{i}-pw"),
            access: String::new(),
            refresh: String::new(),
        })
        .collect()
}

/// Users in a real CQL database: one Apache Cassandra 5 node (the storage
/// fixture's; ScyllaDB speaks the same protocol and transactions) and the
/// Redis Cluster token store, the production shape. The hash is the cheap
/// one, so the server's CPU is the request and store path.
///
/// Register and password change run a fixed number of distinct users, each
/// once (as in production: one registration, and rarely more than one
/// change, per account; the per-account mail limit would otherwise leave
/// out later changes' notices); login, refresh and `me` run for `secs`.
/// CQL per op is the delta of the server's `portcullis_cql_statements_total`
/// over the window, less what the idle server issued over as long (measured
/// first: the mailer scans the outbox's 16 buckets every second, the
/// availability ping reads once every 5 s), divided by the ops. A password
/// change queues a notice that the mailer delivers later (at most 32 a
/// second), so the phase waits for every notice to be sent and splits the
/// statements into the request's own and each delivery's.
fn scylla_phase(
    bin: &PathBuf,
    secs: u64,
    concurrency: usize,
    ops: usize,
    summary: &mut Vec<String>,
) -> Result<Vec<CqlRow>> {
    use portcullis_storage::scylla::fixture::{CassandraCluster, DATACENTER};
    let t = Instant::now();
    let cassandra = CassandraCluster::start();
    let cassandra_pid = cassandra.nodes[0]
        .pid()
        .context("Cassandra is not running")?;
    let redis = RedisCluster::start();
    eprintln!(
        "(Cassandra pid {cassandra_pid} at {}, Redis Cluster up, {:.0} s)",
        cassandra.contact_point(),
        t.elapsed().as_secs_f64()
    );
    let nodes = cassandra.contact_point();
    let redis_nodes = redis.urls().join(",");
    let replication = format!("{DATACENTER}:1");
    let scylla_env: [(&str, &str); 5] = [
        ("PORTCULLIS_SCYLLA_NODES", nodes.as_str()),
        ("PORTCULLIS_SCYLLA_KEYSPACE", "portcullis_bench"),
        ("PORTCULLIS_SCYLLA_LOCAL_DC", DATACENTER),
        ("PORTCULLIS_SCYLLA_REPLICATION", replication.as_str()),
        // A JVM node on a busy 2-core machine: no request should time out
        // (an unknown outcome would add serial reads).
        ("PORTCULLIS_SCYLLA_REQUEST_TIMEOUT", "10s"),
    ];
    let migrate = Command::new(bin)
        .arg("migrate")
        .envs(scylla_env)
        .env("PORTCULLIS_LOG", "warn")
        .output()
        .context("cannot run portcullis migrate")?;
    if !migrate.status.success() {
        bail!(
            "portcullis migrate failed: {}",
            String::from_utf8_lossy(&migrate.stderr)
        );
    }
    let mut env: Vec<(&str, &str)> = scylla_env.to_vec();
    env.extend([
        ("PORTCULLIS_USER_STORE", "scylla"),
        (
            "PORTCULLIS_DATA_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        ),
        ("PORTCULLIS_TOKEN_STORE", "redis-cluster"),
        ("PORTCULLIS_REDIS_NODES", redis_nodes.as_str()),
        ("PORTCULLIS_HASH_QUEUE", "256"),
    ]);
    let srv = Server::start(bin, CHEAP, &env)?;
    srv.wait_ready(Duration::from_secs(60))?;
    eprintln!("(server pid {})", srv.pid);

    // Warm both JITs and caches up on users of their own.
    let mut warm = fresh_users(concurrency.max(4) * 4, "warm");
    let o = run_each(
        "warm-up register",
        &srv,
        &mut warm,
        concurrency,
        register_step,
    );
    if !o.errors.is_empty() {
        bail!("warm-up registrations failed: {:?}", o.errors);
    }
    run(
        "warm-up login",
        &srv,
        &mut warm[..concurrency.max(4)],
        secs.min(3),
        login_step,
    );

    // The idle server's own statements, to take away from every window.
    let idle_secs = 6;
    let s0 = CqlSample::take(&srv, cassandra_pid);
    std::thread::sleep(Duration::from_secs(idle_secs));
    let s1 = CqlSample::take(&srv, cassandra_pid);
    let idle = CqlDelta::between(&s0, &s1);
    let srv_idle = {
        let c0 = process_cpu(srv.pid).unwrap();
        std::thread::sleep(Duration::from_secs(2));
        (process_cpu(srv.pid).unwrap() - c0).as_secs_f64() * 1e6 / 2.0
    };
    summary.push(format!(
        "scylla idle: {:.1} reads/s, {:.1} writes/s, {:.1} LWTs/s over {:.1} s (mailer outbox scan: 16 bucket reads per 1 s poll; availability ping: 1 read per 5 s); Cassandra idle CPU {:.0} µs/s; server idle CPU {:.0} µs/s",
        idle.cql[0] / idle.secs,
        idle.cql[1] / idle.secs,
        idle.cql[2] / idle.secs,
        idle.secs,
        idle.cassandra.as_secs_f64() * 1e6 / idle.secs,
        srv_idle
    ));

    let mut rows = Vec::new();
    let mut record = |o: &Outcome, d: &CqlDelta, what: &str, summary: &mut Vec<String>| {
        print(o);
        let n = o.ok as f64;
        let per_op = d.per_op(&idle, n);
        summary.push(format!(
            "scylla {what}: {} ok in {:.1} s; CQL delta reads {:.0}, writes {:.0}, LWTs {:.0} (idle over as long: {:.1}, {:.1}, {:.1}); Cassandra CPU {:.0} ms (idle over as long {:.0} ms)",
            o.ok,
            d.secs,
            d.cql[0],
            d.cql[1],
            d.cql[2],
            idle.cql[0] / idle.secs * d.secs,
            idle.cql[1] / idle.secs * d.secs,
            idle.cql[2] / idle.secs * d.secs,
            d.cassandra.as_secs_f64() * 1e3,
            idle.cassandra.as_secs_f64() * 1e3 / idle.secs * d.secs,
        ));
        rows.push(CqlRow {
            name: what.to_owned(),
            ops: n,
            server_us: o.cpu_us_per_op(),
            cassandra_us: d.cassandra_us(&idle, n),
            per_op,
        });
    };

    let mut users = fresh_users(ops, "run");
    let a = CqlSample::take(&srv, cassandra_pid);
    let o = run_each(
        "register (Cassandra users, Redis tokens)",
        &srv,
        &mut users,
        concurrency,
        register_step,
    );
    let b = CqlSample::take(&srv, cassandra_pid);
    if o.ok as usize != users.len() {
        bail!("registrations failed: {:?}", o.errors);
    }
    record(&o, &CqlDelta::between(&a, &b), "register", summary);

    let clients = concurrency.min(users.len());
    for (what, name, step) in [
        (
            "login",
            "login (cheap hash, Cassandra users, Redis tokens)",
            login_step as fn(&mut User, &mut Conn) -> u16,
        ),
        (
            "refresh",
            "refresh (Cassandra users, Redis tokens)",
            refresh_step,
        ),
        ("me", "me (Cassandra users, Redis tokens)", me_step),
    ] {
        let a = CqlSample::take(&srv, cassandra_pid);
        let o = run(name, &srv, &mut users[..clients], secs, step);
        let b = CqlSample::take(&srv, cassandra_pid);
        record(&o, &CqlDelta::between(&a, &b), what, summary);
    }

    // Password change: the requests, then the mailer delivering their notices.
    let a = CqlSample::take(&srv, cassandra_pid);
    let o = run_each(
        "password change (Cassandra users, Redis tokens)",
        &srv,
        &mut users,
        concurrency,
        change_password_step,
    );
    let b = CqlSample::take(&srv, cassandra_pid);
    if o.ok as usize != users.len() {
        bail!("password changes failed: {:?}", o.errors);
    }
    let srv_cpu_b = process_cpu(srv.pid).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30 + 2 * ops as u64 / 32);
    let mut c = b;
    while c.mail_sent - a.mail_sent < o.ok as f64 {
        if Instant::now() > deadline {
            bail!(
                "the mailer sent {} of {} notices in time",
                c.mail_sent - a.mail_sent,
                o.ok
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        c = CqlSample::take(&srv, cassandra_pid);
    }
    // Let the last delivery's record update finish (it follows the count).
    std::thread::sleep(Duration::from_millis(500));
    c = CqlSample::take(&srv, cassandra_pid);
    let srv_drain_us = (process_cpu(srv.pid).unwrap() - srv_cpu_b).as_secs_f64() * 1e6;
    let request = CqlDelta::between(&a, &b);
    let drain = CqlDelta::between(&b, &c);
    let total = request.plus(drain);
    let n = o.ok as f64;
    // Each delivery's statements, from the drain (requests over), then the
    // request's own: the whole minus one delivery per change.
    let per_delivery = drain.per_op(&idle, drain.mail_sent);
    let per_change = total.per_op(&idle, n);
    let own = [0, 1, 2].map(|i| per_change[i] - per_delivery[i]);
    print(&o);
    summary.push(format!(
        "scylla password change: {} ok in {:.1} s, {} notices sent meanwhile; then {} sent in {:.1} s; CQL delta reads {:.0}/{:.0}, writes {:.0}/{:.0}, LWTs {:.0}/{:.0} (requests/drain)",
        o.ok,
        request.secs,
        request.mail_sent,
        drain.mail_sent,
        drain.secs,
        request.cql[0],
        drain.cql[0],
        request.cql[1],
        drain.cql[1],
        request.cql[2],
        drain.cql[2],
    ));
    rows.push(CqlRow {
        name: "password change (request)".to_owned(),
        ops: n,
        server_us: o.cpu_us_per_op(),
        cassandra_us: request.cassandra_us(&idle, n),
        per_op: own,
    });
    rows.push(CqlRow {
        name: "password change notice (mailer, per message)".to_owned(),
        ops: drain.mail_sent,
        server_us: (srv_drain_us - srv_idle * drain.secs) / drain.mail_sent.max(1.0),
        cassandra_us: drain.cassandra_us(&idle, drain.mail_sent),
        per_op: per_delivery,
    });
    rows.push(CqlRow {
        name: "password change, request + notice".to_owned(),
        ops: n,
        server_us: f64::NAN,
        cassandra_us: total.cassandra_us(&idle, n),
        per_op: per_change,
    });
    drop(srv);
    drop(redis);
    drop(cassandra);
    Ok(rows)
}

fn main() -> Result<()> {
    let mut secs = 10u64;
    let mut concurrency = 32usize;
    let mut phases = "login,refresh,me,cheap,overload,redis".to_owned();
    let mut scylla_ops = 640usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().context("--secs N")?.parse()?,
            "--concurrency" => concurrency = args.next().context("--concurrency N")?.parse()?,
            "--phases" => {
                phases = args
                    .next()
                    .context("--phases login,refresh,me,cheap,overload,redis,scylla")?
            }
            "--scylla-ops" => scylla_ops = args.next().context("--scylla-ops N")?.parse()?,
            other => bail!(
                "unknown argument {other} (use --secs N, --concurrency N, --phases login,refresh,me,cheap,overload,redis,scylla, --scylla-ops N)"
            ),
        }
    }
    let bin = std::env::var_os("PORTCULLIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::current_exe()
                .unwrap()
                .with_file_name("portcullis")
        });
    if !bin.exists() {
        bail!(
            "{} not found: build it with cargo build --release -p portcullis-edge",
            bin.display()
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("# Portcullis end-to-end benchmark");
    println!(
        "server: {} | cores: {cores} | {secs} s per phase | load generator in this process, same machine",
        bin.display()
    );
    println!();
    println!(
        "| {:<34} | {:>4} | {:>8} | {:>9} | {:>7} | {:>7} | {:>10} | {:>10} | {:>6} | {:<8} |",
        "phase",
        "conc",
        "ok ops",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "CPU µs/op",
        "CPU µs/op*",
        "steal%",
        "errors"
    );
    println!(
        "|{:-<36}|{:->6}|{:->10}|{:->11}|{:->9}|{:->9}|{:->12}|{:->12}|{:->8}|{:-<10}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    let sign_before = reference_sign();
    let wake_before = reference_wakeup();

    let want = |p: &str| phases.split(',').any(|x| x == p);
    let mut summary = Vec::new();

    // OWASP hashing: login overhead ratio, then refresh and me on the same server.
    if want("login") || want("refresh") || want("me") {
        let srv = Server::start(&bin, OWASP, &[])?;
        eprintln!("(server pid {})", srv.pid);
        let mut users = seed(&srv, concurrency.max(4), "owasp");
        if want("login") {
            // Alternate login windows with raw-verify windows so that the
            // machine's drift (other tenants, frequency) hits both alike.
            // Keep the hash queue short: every login is served, none refused.
            let login_conc = 4;
            let rounds = 4u32;
            let window = (secs / u64::from(rounds)).max(1);
            let mut login: Option<Outcome> = None;
            let mut raws = Vec::new();
            let hash_cpu_before = server_hash_cpu(&srv);
            for _ in 0..rounds {
                raws.push(raw_verify_cpu(OWASP, 4, cores));
                let o = run(
                    "login (argon2id m=19456,t=2,p=1)",
                    &srv,
                    &mut users[..login_conc],
                    window,
                    login_step,
                );
                login = Some(match login {
                    None => o,
                    Some(mut acc) => {
                        acc.ok += o.ok;
                        acc.secs += o.secs;
                        acc.cpu += o.cpu;
                        acc.cpu_precise += o.cpu_precise;
                        acc.lat_us.extend(o.lat_us);
                        acc.lat_503_us.extend(o.lat_503_us);
                        for (k, v) in o.errors {
                            *acc.errors.entry(k).or_insert(0) += v;
                        }
                        acc
                    }
                });
            }
            raws.push(raw_verify_cpu(OWASP, 4, cores));
            let mut login = login.expect("at least one round");
            login.lat_us.sort_unstable();
            print(&login);
            let hash_cpu = server_hash_cpu(&srv) - hash_cpu_before;
            let hash_per_login = hash_cpu.as_secs_f64() * 1e6 / login.ok.max(1) as f64;
            let raw = raws.iter().sum::<Duration>() / raws.len() as u32;
            let ratio = login.cpu_us_per_op() / (raw.as_secs_f64() * 1e6);
            let ratio_precise = login.cpu_precise_us_per_op() / (raw.as_secs_f64() * 1e6);
            let samples: Vec<String> = raws
                .iter()
                .map(|d| format!("{:.0}", d.as_secs_f64() * 1e6))
                .collect();
            summary.push(format!(
                "raw verify argon2id m=19456,t=2,p=1 in this process, {cores} at once like the server's pool: {:.0} µs CPU (windows: {})",
                raw.as_secs_f64() * 1e6,
                samples.join(", ")
            ));
            summary.push(format!(
                "login overhead ratio = server CPU per login / raw verify CPU = {ratio:.4} (schedstat: {ratio_precise:.4}); target <= 1.03"
            ));
            summary.push(format!(
                "login overhead ratio, both sides inside the server in the same windows = server CPU per login / CPU inside its hash jobs per login = {:.1} / {:.1} = {:.4}",
                login.cpu_precise_us_per_op(),
                hash_per_login,
                login.cpu_precise_us_per_op() / hash_per_login
            ));
        }
        if want("refresh") {
            let refresh = run(
                "refresh (durable, embedded store)",
                &srv,
                &mut users,
                secs,
                refresh_step,
            );
            print(&refresh);
            summary.push(format!(
                "refresh: {:.1} server CPU µs/op (target <= 35)",
                refresh.cpu_us_per_op()
            ));
        }
        if want("me") {
            let me = run("me", &srv, &mut users, secs, me_step);
            print(&me);
            summary.push(format!(
                "me: {:.1} server CPU µs/op (target <= 15)",
                me.cpu_us_per_op()
            ));
        }
    }

    // Cheap hashing: the engine's own cost per login becomes visible.
    if want("cheap") {
        // A queue deep enough for every client: this phase measures the
        // engine's cost per login, not the shedding of excess logins.
        let srv = Server::start(&bin, CHEAP, &[("PORTCULLIS_HASH_QUEUE", "256")])?;
        let mut users = seed(&srv, concurrency.max(4), "cheap");
        let cheap = run(
            "login (argon2id m=8,t=1,p=1: cheap)",
            &srv,
            &mut users,
            secs,
            login_step,
        );
        print(&cheap);
        drop(srv);
        let raw_cheap = raw_verify_cpu(CHEAP, 20_000, 1);
        summary.push(format!(
            "engine cost per login with the cheap hash = {:.1} - {:.1} (raw cheap verify) = {:.1} µs CPU",
            cheap.cpu_us_per_op(),
            raw_cheap.as_secs_f64() * 1e6,
            cheap.cpu_us_per_op() - raw_cheap.as_secs_f64() * 1e6
        ));
    }

    // Overload: the hash pool at capacity (every thread busy, the queue
    // full, nothing refused), then 16 clients per hash thread, each waiting
    // the Retry-After of a 503 as a well-behaved client does. Accepted
    // logins must not wait much longer than at capacity, and refusals must
    // come at once: a login the pool cannot take is refused before it waits
    // for its partition.
    if want("overload") {
        let srv = Server::start(&bin, OWASP, &[])?;
        let threads = cores;
        // The server's default queue: 4 per hash thread.
        let capacity = threads * 5;
        let mut users = seed(&srv, 16 * threads, "overload");
        let at_capacity = run(
            "login at capacity (OWASP)",
            &srv,
            &mut users[..capacity],
            secs,
            login_step,
        );
        print(&at_capacity);
        let over = run_with(
            "login overload 16x threads (OWASP)",
            &srv,
            &mut users,
            secs,
            login_step,
            true,
        );
        print(&over);
        let p99_cap = percentile(&at_capacity.lat_us, 99.0) as f64 / 1000.0;
        let p99_over = percentile(&over.lat_us, 99.0) as f64 / 1000.0;
        let p99_503 = percentile(&over.lat_503_us, 99.0) as f64 / 1000.0;
        summary.push(format!(
            "overload: accepted logins p99 {p99_over:.1} ms against {p99_cap:.1} ms at capacity ({} clients) = {:.2}x (target <= 2x); {} answers 503 with p99 {p99_503:.2} ms (target <= 5 ms); {} accepted",
            capacity,
            p99_over / p99_cap.max(0.001),
            over.lat_503_us.len(),
            over.ok
        ));
        drop(srv);
    }

    // The Redis Cluster token store: refresh and me against a real 3+3
    // cluster on this machine. Redis' own CPU is read from its processes.
    if want("redis") {
        let cluster = RedisCluster::start();
        let nodes = cluster.urls().join(",");
        let srv = Server::start(
            &bin,
            CHEAP,
            &[
                ("PORTCULLIS_TOKEN_STORE", "redis-cluster"),
                ("PORTCULLIS_REDIS_NODES", nodes.as_str()),
                ("PORTCULLIS_HASH_QUEUE", "256"),
            ],
        )?;
        let mut users = seed(&srv, concurrency.max(4), "redis");
        let redis_cpu = |c: &RedisCluster| -> Duration {
            c.pids()
                .into_iter()
                .filter_map(|p| process_cpu(p).ok())
                .sum()
        };
        for (name, phase) in [
            ("refresh (Redis Cluster token store)", "refresh"),
            ("me (Redis Cluster token store)", "me"),
            ("login (cheap hash, Redis Cluster token store)", "login"),
        ] {
            let r0 = redis_cpu(&cluster);
            let o = match phase {
                "refresh" => run(name, &srv, &mut users, secs, refresh_step),
                "me" => run(name, &srv, &mut users, secs, me_step),
                _ => run(name, &srv, &mut users, secs, login_step),
            };
            let redis_us = (redis_cpu(&cluster) - r0).as_secs_f64() * 1e6 / o.ok.max(1) as f64;
            print(&o);
            summary.push(format!(
                "{name}: {:.1} server CPU µs/op{}, {:.0} ops/s; Redis' own CPU (all 6 processes) {:.1} µs/op",
                o.cpu_us_per_op(),
                if phase == "refresh" { " (target <= 80)" } else { "" },
                o.ok as f64 / o.secs,
                redis_us
            ));
        }
        drop(srv);
        drop(cluster);
    }

    let mut cql_rows = Vec::new();
    if want("scylla") {
        cql_rows = scylla_phase(&bin, secs, concurrency, scylla_ops, &mut summary)?;
    }

    let sign_after = reference_sign();
    let sign = (sign_before + sign_after) / 2;
    let wake_after = reference_wakeup();
    println!();
    println!(
        "CPU µs/op: server utime+stime from /proc/<pid>/stat (tick resolution); CPU µs/op*: sum of /proc/<pid>/task/*/schedstat (ns); steal%: hypervisor steal during the phase."
    );
    println!(
        "yardstick: one ring Ed25519 signature costs {:.1} µs CPU on this machine now (before {:.1}, after {:.1}); every refresh and login signs one access token",
        sign.as_secs_f64() * 1e6,
        sign_before.as_secs_f64() * 1e6,
        sign_after.as_secs_f64() * 1e6
    );
    println!(
        "yardstick: one cross-thread wake-up round trip costs {:.1} µs CPU now (before {:.1}, after {:.1}); a refresh makes about four hand-offs",
        (wake_before + wake_after).as_secs_f64() * 1e6 / 2.0,
        wake_before.as_secs_f64() * 1e6,
        wake_after.as_secs_f64() * 1e6
    );
    for line in summary {
        println!("{line}");
    }
    if !cql_rows.is_empty() {
        print_cql_rows(&cql_rows);
        println!();
        println!(
            "server µs/op: the server's CPU over the window (password change notice: over the drain, the idle server's CPU taken away); Cassandra µs/op: the JVM's CPU from /proc, its idle CPU over as long taken away; reads/writes/LWTs per op: portcullis_cql_statements_total delta, less the idle server's statements over as long, / ok ops"
        );
    }
    Ok(())
}
