//! The real binary against real clusters that come, go and change under it:
//! `portcullis migrate` on a Cassandra node, a server started before its
//! ScyllaDB or Redis Cluster, a CQL node dying under load, and a three-node
//! cluster losing one node.
// Real database processes run on wall time; no test clock reaches them.
#![allow(clippy::disallowed_methods)]

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portcullis_storage::redis::fixture::RedisCluster;
use portcullis_storage::scylla::ScyllaConfig;
use portcullis_storage::scylla::fixture::CassandraCluster;
use serde_json::{Value, json};

use crate::binary::{BIN, Proc, spawn_with};
use crate::support::*;

const PASSWORD: &str = "correct horse battery";

/// The environment that points the binary at `cfg`'s keyspace.
fn scylla_env(cfg: &ScyllaConfig) -> Vec<(&'static str, String)> {
    let (dc, rf) = &cfg.replication[0];
    vec![
        ("PORTCULLIS_USER_STORE", "scylla".into()),
        ("PORTCULLIS_SCYLLA_NODES", cfg.nodes.join(",")),
        ("PORTCULLIS_SCYLLA_KEYSPACE", cfg.keyspace.clone()),
        ("PORTCULLIS_SCYLLA_LOCAL_DC", dc.clone()),
        ("PORTCULLIS_SCYLLA_REPLICATION", format!("{dc}:{rf}")),
        ("PORTCULLIS_DATA_KEY", TEST_DATA_KEY.into()),
        // A JVM node on a busy 2-core machine answers slowly at times.
        ("PORTCULLIS_SCYLLA_REQUEST_TIMEOUT", "5s".into()),
        ("PORTCULLIS_STORE_CONNECT_TIMEOUT", "1s".into()),
    ]
}

fn serve(dir: &std::path::Path, env: &[(&'static str, String)]) -> Proc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    spawn_with(dir, &env)
}

/// Runs `portcullis migrate` against `cfg`: (exit code, stdout, stderr).
fn migrate(cfg: &ScyllaConfig) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("migrate")
        .envs(scylla_env(cfg))
        .env("PORTCULLIS_LOG_FORMAT", "text")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn register(c: &Client, email: &str) -> Resp {
    c.post_json(
        "/v1/auth/register",
        &json!({"email": email, "password": PASSWORD}),
        None,
    )
}

fn login(c: &Client, email: &str) -> Resp {
    c.post_json(
        "/v1/auth/login",
        &json!({"email": email, "password": PASSWORD}),
        None,
    )
}

/// Polls `/readyz` until it answers 200, and returns its body.
fn wait_ready(p: &Proc, limit: Duration) -> Value {
    let c = Client { addr: p.addr };
    let start = Instant::now();
    loop {
        let r = c.get("/readyz", None);
        if r.status == 200 {
            return r.json();
        }
        assert!(
            start.elapsed() < limit,
            "not ready after {limit:?}: {}\nserver log:\n{}",
            r.text(),
            p.lines.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A 503 as a degraded store must answer it: `unavailable`, `Retry-After`.
fn assert_unavailable(r: &Resp) {
    r.problem(503, "unavailable");
    assert!(r.header("retry-after").is_some(), "{}", r.text());
}

#[test]
fn migrate_applies_once_runs_twice_at_once_and_refuses_a_newer_schema() {
    // Fresh keyspace: every migration, in order.
    let ks = Keyspace::unmigrated("migrate_bin");
    let (code, out, err) = migrate(&ks.config);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("applied migrations [1, 2, 3, 4]"), "{out}");
    assert!(out.contains("schema version 4"), "{out}");

    // Again: nothing to do.
    let (code, out, err) = migrate(&ks.config);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("is up to date (schema version 4)"), "{out}");

    // Two at once on a fresh keyspace: both succeed and the schema is whole
    // (a server starts on it).
    let both = Keyspace::unmigrated("migrate_two");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let cfg = both.config.clone();
            std::thread::spawn(move || migrate(&cfg))
        })
        .collect();
    for r in runs {
        let (code, out, err) = r.join().unwrap();
        assert_eq!(code, Some(0), "{out}{err}");
        assert!(out.contains("schema version 4"), "{out}");
    }
    let dir = tempfile::tempdir().unwrap();
    let p = serve(dir.path(), &scylla_env(&both.config));
    let c = Client { addr: p.addr };
    wait_ready(&p, Duration::from_secs(30));
    assert_eq!(register(&c, "two@example.com").status, 201);
    drop(p);

    // A keyspace a newer Portcullis migrated: migrate and serve both refuse
    // it, saying why, and neither touches it.
    block_on(ks.execute(
        "INSERT INTO {ks}.schema_migrations (version, name, checksum) VALUES (99, 'from_the_future', 'x')",
    ))
    .unwrap();
    let (code, out, err) = migrate(&ks.config);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("migration 99, which this binary does not know (it knows up to 4)"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .envs(scylla_env(&ks.config))
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_LOG_FORMAT", "text")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("migration 99"), "{err}");
    assert!(!err.contains("portcullis listening"), "{err}");
}

/// Every attempt of the load below: email and final status.
type Attempts = Arc<Mutex<Vec<(String, u16)>>>;

/// Registers new users (and logs each in) from `threads` clients until
/// `stop`; every answer must be a success or a clean 503 `unavailable`.
fn register_and_login_load(
    c: Client,
    tag: &'static str,
    threads: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<std::thread::JoinHandle<()>>, Attempts) {
    let attempts: Attempts = Arc::default();
    let handles = (0..threads)
        .map(|t| {
            let stop = stop.clone();
            let attempts = attempts.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let email = format!("{tag}-{t}-{i}@example.com");
                    let r = register(&c, &email);
                    match r.status {
                        201 => {
                            let l = login(&c, &email);
                            if l.status != 200 {
                                assert_unavailable(&l);
                            }
                        }
                        _ => assert_unavailable(&r),
                    }
                    attempts.lock().unwrap().push((email, r.status));
                }
            })
        })
        .collect();
    (handles, attempts)
}

/// After the load: every acknowledged registration logs in; every
/// registration answered 503 either happened whole (the user logs in) or
/// left nothing behind (the email can be registered again).
///
/// One case in between: an email claim whose Paxos round was accepted but
/// not committed when the node died is invisible to plain reads (a login)
/// until the next conditional write on that email completes the round. The
/// retried registration does: it finds the account whole and answers 409,
/// and the user then signs in. A claim pointing at no user would keep the
/// sign-in failing.
fn nothing_lost_nothing_half_written(c: &Client, attempts: &[(String, u16)]) {
    for (email, status) in attempts {
        match status {
            201 => assert_eq!(login(c, email).status, 200, "{email} was acknowledged"),
            _ => {
                let l = login(c, email);
                if l.status != 200 {
                    l.problem(401, "invalid_credentials");
                    let again = register(c, email);
                    match again.status {
                        201 => {}
                        409 => assert_eq!(
                            login(c, email).status,
                            200,
                            "{email}: a failed registration left its email claimed by no user"
                        ),
                        _ => panic!("{email}: {}", again.text()),
                    }
                }
            }
        }
    }
}

#[test]
fn a_server_started_before_its_cql_node_waits_for_it_and_a_dying_node_costs_503s_not_users() {
    let cluster = CassandraCluster::start_synced();
    let ks = Keyspace::unmigrated_on(&cluster, "late_node", 1);
    let (code, out, err) = migrate(&ks.config);
    assert_eq!(code, Some(0), "{out}{err}");
    let node = &cluster.nodes[0];

    // The node is down when the server starts: it serves, alive, not ready.
    node.kill();
    let dir = tempfile::tempdir().unwrap();
    let p = serve(dir.path(), &scylla_env(&ks.config));
    let c = Client { addr: p.addr };
    assert_eq!(c.get("/healthz", None).status, 200);
    let ready = c.get("/readyz", None);
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["checks"]["user_store"], false);
    assert_unavailable(&register(&c, "early@example.com"));

    // The node comes up: the server connects on its own and serves.
    node.restart();
    wait_ready(&p, Duration::from_secs(60));
    let admin = Client {
        addr: admin_addr(&p),
    };
    let ready = admin.get("/readyz", None).json();
    assert_eq!(ready["nodes"]["user_store"], json!({"up": 1, "down": 0}));
    assert_eq!(register(&c, "early@example.com").status, 201);
    assert_eq!(login(&c, "early@example.com").status, 200);

    // The node dies under load and comes back.
    let stop = Arc::new(AtomicBool::new(false));
    let (threads, attempts) = register_and_login_load(c, "dying", 3, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    node.kill();
    std::thread::sleep(Duration::from_secs(3));
    node.restart();
    wait_ready(&p, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .expect("a request got neither success nor a clean 503");
    }
    let attempts = attempts.lock().unwrap().clone();
    let acked = attempts.iter().filter(|(_, s)| *s == 201).count();
    let refused = attempts.iter().filter(|(_, s)| *s == 503).count();
    eprintln!(
        "one node, killed under load: {acked} registrations acknowledged, {refused} answered 503"
    );
    assert!(acked > 0 && refused > 0, "{acked} acked, {refused} refused");
    nothing_lost_nothing_half_written(&c, &attempts);
    let log = p.lines.lock().unwrap().join("\n");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_server_started_before_its_redis_cluster_waits_for_it() {
    let redis = RedisCluster::start_with(3, 0);
    redis.stop_all();
    let dir = tempfile::tempdir().unwrap();
    let p = serve(
        dir.path(),
        &[
            ("PORTCULLIS_TOKEN_STORE", "redis-cluster".into()),
            ("PORTCULLIS_REDIS_NODES", redis.urls().join(",")),
            ("PORTCULLIS_STORE_CONNECT_TIMEOUT", "1s".into()),
        ],
    );
    let c = Client { addr: p.addr };
    assert_eq!(c.get("/healthz", None).status, 200);
    let ready = c.get("/readyz", None);
    assert_eq!(ready.status, 503, "{}", ready.text());
    let checks = &ready.json()["checks"];
    assert_eq!(checks["token_store"], false);
    assert_eq!(checks["signing_keys"], false);
    assert_unavailable(&register(&c, "early@example.com"));
    // No key can check a bearer token yet: 503, not a 401 that would sign
    // its holder out.
    assert_unavailable(&c.get("/v1/users/me", Some("eyJhbGciOiJFZERTQSJ9.e30.c2ln")));
    // Nor is an empty key set published for resource servers to cache.
    assert_unavailable(&c.get("/.well-known/jwks.json", None));

    for n in &redis.nodes {
        n.restart();
    }
    redis.wait_healthy(Duration::from_secs(30));
    let ready = wait_ready(&p, Duration::from_secs(60));
    assert_eq!(ready["status"], "ready");
    let jwks = c.get("/.well-known/jwks.json", None);
    assert_eq!(jwks.status, 200, "{}", jwks.text());
    assert!(!jwks.json()["keys"].as_array().unwrap().is_empty());
    let r = register(&c, "early@example.com");
    assert_eq!(r.status, 201, "{}", r.text());
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(c.get("/v1/users/me", Some(&access)).status, 200);
    assert_eq!(login(&c, "early@example.com").status, 200);
}

#[test]
fn three_nodes_at_rf3_lose_one_under_load_and_lose_nothing() {
    let cluster = CassandraCluster::start_with(3);
    let ks = Keyspace::unmigrated_on(&cluster, "three", 3);
    let (code, out, err) = migrate(&ks.config);
    assert_eq!(code, Some(0), "{out}{err}");
    let dir = tempfile::tempdir().unwrap();
    let p = serve(dir.path(), &scylla_env(&ks.config));
    let c = Client { addr: p.addr };
    wait_ready(&p, Duration::from_secs(60));
    let admin = Client {
        addr: admin_addr(&p),
    };
    let ready = admin.get("/readyz", None).json();
    assert_eq!(ready["nodes"]["user_store"], json!({"up": 3, "down": 0}));

    let stop = Arc::new(AtomicBool::new(false));
    let (threads, attempts) = register_and_login_load(c, "quorum", 3, stop.clone());
    std::thread::sleep(Duration::from_secs(2));
    let victim = &cluster.nodes[2];
    victim.kill();

    // Two of three replicas answer LOCAL_QUORUM and LOCAL_SERIAL: the pod
    // is ready, and says it is degraded, in the admin listener's /readyz and
    // in its metrics, not to the public. (In
    // the seconds before the others mark the node down, a quorum read that
    // picked it times out, so a probe may fail then; the probe's failure
    // threshold rides that out.)
    let start = Instant::now();
    let degraded = loop {
        let doc = admin.get("/readyz", None).json();
        if doc["status"] == "degraded" {
            break doc;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{doc}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(degraded["nodes"]["user_store"], json!({"up": 2, "down": 1}));
    assert_eq!(degraded["checks"]["user_store"], true);
    for _ in 0..5 {
        let r = admin.get("/readyz", None);
        assert_eq!(r.status, 200, "{}", r.text());
        let public = c.get("/readyz", None);
        assert_eq!(public.status, 200, "{}", public.text());
        assert_eq!(public.json()["status"], "ready");
        assert!(public.json().get("nodes").is_none(), "{}", public.text());
        std::thread::sleep(Duration::from_millis(200));
    }
    let start = Instant::now();
    loop {
        let metrics = admin.get("/metrics", None).text();
        if metrics.contains(r#"portcullis_store_nodes{store="user",state="down"} 1"#) {
            assert!(metrics.contains(r#"portcullis_store_nodes{store="user",state="up"} 2"#));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{metrics}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Two clients race for one email while a node is down: exactly one wins.
    let racers: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || register(&c, "contested@example.com").status))
        .collect();
    let mut codes: Vec<u16> = racers.into_iter().map(|t| t.join().unwrap()).collect();
    codes.sort_unstable();
    assert_eq!(codes, [201, 409]);

    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join()
            .expect("a request got neither success nor a clean 503");
    }
    let attempts = attempts.lock().unwrap().clone();
    let acked: HashSet<&str> = attempts
        .iter()
        .filter(|(_, s)| *s == 201)
        .map(|(e, _)| e.as_str())
        .collect();
    let refused = attempts.iter().filter(|(_, s)| *s != 201).count();
    eprintln!(
        "three nodes, one killed under load: {} registrations acknowledged, {refused} answered 503",
        acked.len()
    );
    assert!(acked.len() > 10, "{} registrations", acked.len());

    // The node comes back; then every acknowledged user is still there,
    // read at quorum (which now includes the node that missed writes).
    victim.restart();
    cluster.wait_all_up(Duration::from_secs(60));
    wait_ready(&p, Duration::from_secs(60));
    let start = Instant::now();
    loop {
        let doc = admin.get("/readyz", None).json();
        if doc["status"] == "ready" {
            assert_eq!(doc["nodes"]["user_store"], json!({"up": 3, "down": 0}));
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{doc}");
        std::thread::sleep(Duration::from_millis(200));
    }
    nothing_lost_nothing_half_written(&c, &attempts);
    let lost: Vec<&str> = acked
        .iter()
        .copied()
        .filter(|e| login(&c, e).status != 200)
        .collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
}

/// The admin listener's address, from the "listening" log line.
fn admin_addr(p: &Proc) -> std::net::SocketAddr {
    let lines = p.lines.lock().unwrap();
    let line = lines
        .iter()
        .find(|l| l.contains("portcullis listening"))
        .unwrap();
    let v: Value = serde_json::from_str(line).unwrap();
    v["admin"].as_str().unwrap().parse().unwrap()
}
