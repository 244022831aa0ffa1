//! The `scylla` phase: users in a real CQL database (one Apache Cassandra 5
//! node) and tokens in a Redis Cluster, with the CQL statements, the
//! server's CPU and Cassandra's CPU per operation.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use portcullis_benches::process_cpu;
use portcullis_storage::redis::fixture::RedisCluster;

use crate::CHEAP;
use crate::cql::{CqlDelta, CqlRow, CqlSample};
use crate::run::{Outcome, User, print, run, run_each};
use crate::server::{Conn, Server};
use crate::steps::{
    change_password_step, fresh_users, login_step, me_step, refresh_step, register_step,
};

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
pub(crate) fn scylla_phase(
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
