//! Several pods on one Redis Cluster, failover, and a cluster that is down.
//! Every cluster here is real: `redis-server` processes started by the
//! fixture and stopped by PID.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_engine::config::TokenStoreConfig;
use portcullis_storage::embedded::EmbeddedStore;
use portcullis_storage::redis::fixture::RedisCluster;
use serde_json::{Value, json};

use crate::support::*;

/// Two pods sharing users (as ScyllaDB would) and one token-store prefix.
fn two_pods(
    cluster: &RedisCluster,
    name: &str,
    tweak: impl Fn(&mut portcullis_engine::EngineConfig, &mut portcullis_edge::config::EdgeConfig)
    + Copy,
) -> (TestServer, TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let users = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let prefix = RedisCluster::unique_prefix(name);
    let a = TestServer::pod(
        users.clone(),
        TokenStoreConfig::RedisCluster(cluster.config(&prefix)),
        tweak,
    );
    let b = TestServer::pod(
        users,
        TokenStoreConfig::RedisCluster(cluster.config(&prefix)),
        tweak,
    );
    (a, b, dir)
}

fn refresh(srv: &TestServer, token: &str) -> Resp {
    srv.client()
        .post_json("/v1/auth/refresh", &json!({"refresh_token": token}), None)
}

#[test]
fn a_session_revoked_through_one_pod_is_refused_by_the_other() {
    let (a, b, _dir) = two_pods(RedisCluster::shared(), "pods", |_, _| {});
    let reg = a.register("pods@example.com", "password-1");
    // Pod B verifies pod A's access token (shared signing keys) and rotates
    // its refresh token (shared sessions).
    let on_b = b
        .client()
        .get("/v1/users/me", Some(s(&reg["access_token"])));
    assert_eq!(on_b.status, 200, "{}", on_b.text());
    let r = refresh(&b, s(&reg["refresh_token"]));
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    // Pod A lists the session pod B rotated.
    let list = a.client().get("/v1/sessions", Some(s(&t["access_token"])));
    assert_eq!(list.status, 200);
    assert_eq!(list.json()["sessions"].as_array().unwrap().len(), 1);
    // Logout through A; B refuses the access token and the refresh token.
    assert_eq!(
        a.client()
            .post_empty("/v1/auth/logout", Some(s(&t["access_token"])))
            .status,
        204
    );
    b.client()
        .get("/v1/users/me", Some(s(&t["access_token"])))
        .problem(401, "invalid_token");
    refresh(&b, s(&t["refresh_token"])).problem(401, "invalid_grant");
    // Reuse detected on B revokes the session for A too.
    let l = a.login("pods@example.com", "password-1").json();
    let r = refresh(&b, s(&l["refresh_token"]));
    assert_eq!(r.status, 200);
    b.clock.advance(Duration::from_secs(3));
    refresh(&b, s(&l["refresh_token"])).problem(401, "invalid_grant");
    a.client()
        .get("/v1/users/me", Some(s(&l["access_token"])))
        .problem(401, "invalid_token");
}

#[test]
fn lockout_is_reached_through_both_pods_together() {
    let (a, b, _dir) = two_pods(RedisCluster::shared(), "lock", |_, _| {});
    a.register("shared-lock@example.com", "right-password");
    for i in 0..5 {
        let pod = if i % 2 == 0 { &a } else { &b };
        pod.login("shared-lock@example.com", "wrong-password")
            .problem(401, "invalid_credentials");
    }
    for pod in [&a, &b] {
        pod.login("shared-lock@example.com", "right-password")
            .problem(429, "too_many_attempts");
    }
}

#[test]
fn parallel_wrong_passwords_on_both_pods_check_no_more_than_the_limit() {
    let (a, b, _dir) = two_pods(RedisCluster::shared(), "lockpar", |_, _| {});
    a.register("race-lock@example.com", "right-password");
    let a = Arc::new(a);
    let b = Arc::new(b);
    let handles: Vec<_> = (0..12)
        .map(|i| {
            let pod = if i % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || pod.login("race-lock@example.com", "wrong-password").status)
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    // Refused: locked (too_many_attempts), or a third login of the account
    // in flight on its pod (too_many_requests, not counted).
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        (1..=5).contains(&checked) && checked + refused == 12,
        "no more than the policy's 5 failures are checked: {statuses:?}"
    );
    // Wrong passwords one at a time until the lock: exactly the policy's 5
    // were checked in all, parallel or not.
    let mut more = 0;
    while a.login("race-lock@example.com", "wrong-password").status == 401 {
        more += 1;
        assert!(more <= 5, "more checks than the policy allows");
    }
    assert_eq!(checked + more, 5, "{statuses:?} then {more}");
    for pod in [&a, &b] {
        pod.login("race-lock@example.com", "right-password")
            .problem(429, "too_many_attempts");
    }
}

#[test]
fn the_per_address_limit_is_shared_by_the_pods() {
    let (a, b, _dir) = two_pods(RedisCluster::shared(), "rate", |_, edge| {
        edge.ip_rate_limit = "1/h,burst=3".parse().unwrap();
    });
    // Each pod's own limiter would admit 3; together they admit 3.
    for pod in [&a, &a, &b] {
        pod.login("nobody@example.com", "password-1")
            .problem(401, "invalid_credentials");
    }
    let r = b.login("nobody@example.com", "password-1");
    r.problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 1000, "{retry}");
}

/// How one refreshing client fared during a failover.
#[derive(Default, Debug)]
struct Tally {
    ok: usize,
    unavailable: usize,
    /// A 401 right after a 200: an acknowledged rotation was lost.
    lost: usize,
    /// A 401 right after a 503: the failed request's rotation was applied
    /// before its answer was lost, so the client holds a superseded token.
    stranded: usize,
    ok_after_kill: usize,
    /// A 200 after this client saw a 503: it came through the failover.
    ok_after_outage: usize,
    other: Vec<u16>,
}

#[test]
fn refreshes_survive_a_master_failover_without_restarting() {
    let cluster = RedisCluster::start();
    let prefix = RedisCluster::unique_prefix("failover");
    let mut rc = cluster.config(&prefix);
    rc.wait_replicas = 1;
    rc.command_timeout = Duration::from_millis(300);
    let srv = Arc::new(TestServer::on_with(Stores::Embedded, |engine, _| {
        engine.token_store = TokenStoreConfig::RedisCluster(rc);
    }));
    let users: Vec<Value> = (0..6)
        .map(|i| srv.register(&format!("f{i}@example.com"), "password-1"))
        .collect();
    let victim_user = s(&users[0]["user"]["id"]).to_owned();
    let victim = cluster.master_for_key(&format!("{{{victim_user}}}"));
    let killed = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let tallies: Vec<Arc<Mutex<Tally>>> = (0..users.len())
        .map(|_| Arc::new(Mutex::new(Tally::default())))
        .collect();
    let handles: Vec<_> = users
        .iter()
        .zip(&tallies)
        .map(|(u, tally)| {
            let (srv, killed, stop, tally) =
                (srv.clone(), killed.clone(), stop.clone(), tally.clone());
            let mut token = s(&u["refresh_token"]).to_owned();
            std::thread::spawn(move || {
                let mut last_ok = true;
                while !stop.load(Ordering::Relaxed) {
                    let r = refresh(&srv, &token);
                    let mut t = tally.lock().unwrap();
                    match r.status {
                        200 => {
                            token = s(&r.json()["refresh_token"]).to_owned();
                            t.ok += 1;
                            last_ok = true;
                            if killed.load(Ordering::Relaxed) {
                                t.ok_after_kill += 1;
                            }
                            if t.unavailable > 0 {
                                t.ok_after_outage += 1;
                            }
                        }
                        503 => {
                            assert!(r.header("retry-after").is_some());
                            r.problem(503, "unavailable");
                            t.unavailable += 1;
                            last_ok = false;
                        }
                        401 => {
                            if last_ok {
                                t.lost += 1;
                            } else {
                                t.stranded += 1;
                            }
                            // This client cannot continue its chain.
                            return;
                        }
                        other => {
                            eprintln!("unexpected answer {other}: {}", r.text());
                            t.other.push(other);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    cluster.node(victim).kill();
    killed.store(true, Ordering::Relaxed);
    let mut waited = Duration::ZERO;
    // The victim's client sees the outage (503) and then success, or ends
    // stranded; the others keep going.
    while waited < Duration::from_secs(30) {
        let victim_done = {
            let t = tallies[0].lock().unwrap();
            t.ok_after_outage > 0 || t.stranded > 0 || t.lost > 0 || !t.other.is_empty()
        };
        let others_ok = tallies[1..].iter().all(|t| {
            let t = t.lock().unwrap();
            t.ok_after_kill > 0 || t.stranded > 0
        });
        if victim_done && others_ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    // Keep refreshing a moment after the recovery.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let tallies: Vec<Tally> = tallies
        .iter()
        .map(|t| std::mem::take(&mut *t.lock().unwrap()))
        .collect();
    let total = |f: fn(&Tally) -> usize| tallies.iter().map(f).sum::<usize>();
    println!(
        "failover: {} refreshes ok, {} answered 503 during the failover, {} stranded by an \
         applied-but-unanswered rotation, {} acknowledged rotations lost; recovered after {:?}",
        total(|t| t.ok),
        total(|t| t.unavailable),
        total(|t| t.stranded),
        total(|t| t.lost),
        waited
    );
    for t in &tallies {
        assert!(t.other.is_empty(), "no 500 or other status: {t:?}");
        assert_eq!(t.lost, 0, "an acknowledged rotation was lost: {t:?}");
        assert!(t.ok_after_kill > 0 || t.stranded > 0, "{t:?}");
    }
    assert!(
        tallies[0].unavailable > 0 && (tallies[0].ok_after_outage > 0 || tallies[0].stranded > 0),
        "the victim's client saw the outage and came through it: {:?}",
        tallies[0]
    );
    // The user whose master died can sign in and refresh again.
    let l = srv.login("f0@example.com", "password-1");
    assert_eq!(l.status, 200, "{}", l.text());
    assert_eq!(refresh(&srv, s(&l.json()["refresh_token"])).status, 200);
}

#[test]
fn a_cluster_that_is_down_answers_503_and_readiness_follows_it() {
    let cluster = RedisCluster::start_with(3, 0);
    let mut rc = cluster.config("down");
    rc.command_timeout = Duration::from_millis(300);
    let srv = TestServer::on_with(Stores::Embedded, |engine, _| {
        engine.token_store = TokenStoreConfig::RedisCluster(rc);
    });
    let admin = Client { addr: srv.admin };
    let reg = srv.register("down@example.com", "password-1");
    assert_eq!(admin.get("/readyz", None).status, 200);
    cluster.stop_all();
    let r = refresh(&srv, s(&reg["refresh_token"]));
    r.problem(503, "unavailable");
    assert!(r.header("retry-after").is_some());
    srv.client()
        .get("/v1/users/me", Some(s(&reg["access_token"])))
        .problem(503, "unavailable");
    srv.login("down@example.com", "password-1")
        .problem(503, "unavailable");
    srv.client()
        .post_empty("/v1/auth/logout", Some(s(&reg["access_token"])))
        .problem(503, "unavailable");
    let ready = admin.get("/readyz", None);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["checks"]["token_store"], false);
    assert_eq!(admin.get("/healthz", None).status, 200, "alive, not ready");
    // The cluster comes back (empty: these nodes do not persist); so does
    // the service, without a restart.
    for n in &cluster.nodes {
        n.restart();
    }
    cluster.wait_healthy(Duration::from_secs(30));
    let mut waited = Duration::ZERO;
    while admin.get("/readyz", None).status != 200 {
        assert!(waited < Duration::from_secs(30), "readiness did not return");
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let l = srv.login("down@example.com", "password-1");
    assert_eq!(l.status, 200, "{}", l.text());
    assert_eq!(refresh(&srv, s(&l.json()["refresh_token"])).status, 200);
    // The outage is visible in the metrics.
    let m = admin.get("/metrics", None).text();
    for name in [
        "portcullis_redis_reconnections_total",
        "portcullis_redis_errors_total{kind=",
        "portcullis_redis_command_seconds_bucket{op=\"rotate\"",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
}

/// Sends `sig` to every node of `cluster`.
fn signal_all(cluster: &RedisCluster, sig: i32) {
    for pid in cluster.pids() {
        // SAFETY: plain kill(2) on a redis-server this test started.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(i32::try_from(pid).unwrap(), sig) };
        assert_eq!(rc, 0);
    }
}

#[test]
fn a_reset_while_the_token_store_stalls_changes_nothing_it_cannot_finish() {
    // The attack: a victim resets a password while the token store does not
    // answer. Had the reset written the new password and then failed to end
    // the sessions, the attacker's stolen session would outlive the reset
    // (and the victim's retry would find the link used up).
    let cluster = RedisCluster::start_with(3, 0);
    let mut rc = cluster.config("stall");
    rc.command_timeout = Duration::from_millis(300);
    let srv = TestServer::on_with(Stores::Embedded, |engine, _| {
        engine.token_store = TokenStoreConfig::RedisCluster(rc);
        // The per-account mail limit lives in the token store too, and would
        // refuse the reset's notice first: this test is about the reset.
        engine.account.mail_limits = Vec::new();
    });
    let (c, admin) = (srv.client(), Client { addr: srv.admin });
    srv.register("stall@example.com", "old-password");
    let stolen = srv.login("stall@example.com", "old-password").json();
    let stolen_refresh = s(&stolen["refresh_token"]).to_owned();
    c.post_json(
        "/v1/password/forgot",
        &json!({"email": "stall@example.com"}),
        None,
    );
    let token = token_in(&srv.next_mail("stall@example.com", &mut Vec::new()), "pcr_");

    signal_all(&cluster, libc::SIGSTOP);
    let mut waited = Duration::ZERO;
    while admin.get("/readyz", None).json()["checks"]["token_store"] != false {
        assert!(waited < Duration::from_secs(20), "the stall went unnoticed");
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": token, "new_password": "new-password"}),
        None,
    );
    signal_all(&cluster, libc::SIGCONT);
    r.problem(503, "unavailable");
    while admin.get("/readyz", None).status != 200 {
        assert!(waited < Duration::from_secs(40), "readiness did not return");
        std::thread::sleep(Duration::from_millis(100));
        waited += Duration::from_millis(100);
    }

    // Nothing changed: the old password still signs in, the link still works.
    assert_eq!(srv.login("stall@example.com", "old-password").status, 200);
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": token, "new_password": "new-password"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    // And this time the stolen session ends with it.
    refresh(&srv, &stolen_refresh).problem(401, "invalid_grant");
    srv.login("stall@example.com", "old-password")
        .problem(401, "invalid_credentials");
}
