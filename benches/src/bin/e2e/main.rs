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
//! The `passkey` phase (`--phases passkey`, not run by default) signs in
//! with passkeys (a software authenticator in this process answers) and
//! reports the server's CPU per sign-in (its start and finish requests).
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
//!
//! The pieces are in modules next to this file: the server under test and
//! its connections (`server.rs`), the measured windows (`run.rs`), the
//! clocks and metrics read around them (`measure.rs`), the client steps
//! (`steps.rs`), and the `scylla` phase (`scylla.rs`, its table in `cql.rs`).

#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod cql;
mod measure;
mod run;
mod scylla;
mod server;
mod steps;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use portcullis_benches::{percentile, process_cpu};
use portcullis_storage::redis::fixture::RedisCluster;

use cql::print_cql_rows;
use measure::{raw_verify_cpu, reference_sign, reference_wakeup, server_hash_cpu};
use run::{Outcome, print, run, run_with};
use scylla::scylla_phase;
use server::Server;
use steps::{enroll_passkeys, login_step, me_step, passkey_step, refresh_step, seed};

const OWASP: &str = "argon2id:m=19456,t=2,p=1";

const CHEAP: &str = "argon2id:m=8,t=1,p=1";

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
                    .context("--phases login,refresh,me,cheap,overload,redis,scylla,passkey")?
            }
            "--scylla-ops" => scylla_ops = args.next().context("--scylla-ops N")?.parse()?,
            other => bail!(
                "unknown argument {other} (use --secs N, --concurrency N, --phases login,refresh,me,cheap,overload,redis,scylla,passkey, --scylla-ops N)"
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

    // Passkey sign-in (discoverable, no email typed): start and finish, two
    // requests per operation, answered by a software authenticator in this
    // process. Setting the passkeys up verifies each user's email first.
    if want("passkey") {
        let srv = Server::start(&bin, CHEAP, &[("PORTCULLIS_HASH_QUEUE", "256")])?;
        let mut users = seed(&srv, concurrency.max(4), "passkey");
        enroll_passkeys(&srv, &mut users);
        let o = run(
            "passkey sign-in (start + finish)",
            &srv,
            &mut users,
            secs,
            passkey_step,
        );
        print(&o);
        summary.push(format!(
            "passkey sign-in: {:.1} server CPU µs/op (two requests: start, finish), {:.0} ops/s",
            o.cpu_us_per_op(),
            o.ok as f64 / o.secs
        ));
        drop(srv);
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
