//! The conformance suite and Redis-specific checks, against a real cluster
//! started from `redis-server` (see [`super::fixture`]).

use std::sync::Arc;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};

use super::fixture::{RedisCluster, command};
use super::keys::is_session_key;
use super::reply::store_err;
use super::*;
use crate::StoreError;
use crate::conformance::{Backends, sample_session};
use crate::embedded::EmbeddedStore;
use crate::model::{RateLimit, RotateOutcome, RotateRequest};
use crate::traits::TokenStore;

async fn store(name: &str) -> RedisClusterStore {
    let cluster = tokio::task::spawn_blocking(RedisCluster::shared)
        .await
        .unwrap();
    RedisClusterStore::connect(cluster.config(&RedisCluster::unique_prefix(name)))
        .await
        .unwrap()
}

async fn fresh() -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let users = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    Backends {
        users,
        tokens: Arc::new(store("conformance").await),
        guard: Box::new(dir),
    }
}

crate::conformance_suite!(fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_keys_share_one_slot_and_expire_with_the_session() {
    let s = store("layout").await;
    let cluster = RedisCluster::shared();
    let rec = sample_session(1, 1, 1);
    s.create_session(&rec, 0).await.unwrap();
    let session_key = s.session_key(rec.user_id, rec.id);
    let index_key = s.index_key(rec.user_id);
    let port = cluster.master_for_key(&session_key);
    let slot = |k: &str| command(port, &["CLUSTER", "KEYSLOT", k]).unwrap();
    assert_eq!(slot(&session_key), slot(&index_key));
    assert!(session_key.contains(&format!("{{{}}}", rec.user_id)));
    // The TTL is the session's remaining life (30 days in the sample).
    let ttl: i64 = command(port, &["PTTL", &session_key])
        .unwrap()
        .parse()
        .unwrap();
    let expected = i64::try_from(rec.expires_at_ms - rec.last_used_at_ms).unwrap();
    assert!(ttl > expected - 60_000 && ttl <= expected, "{ttl}");
    let ttl: i64 = command(port, &["PTTL", &index_key])
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl > expected - 60_000 && ttl <= expected, "{ttl}");
    // The stored refresh hash is the record's 32-byte hash.
    let n: usize = command(port, &["HSTRLEN", &session_key, "h"])
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(n, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_are_reloaded_after_a_script_flush() {
    let s = store("noscript").await;
    let cluster = RedisCluster::shared();
    let rec = sample_session(2, 1, 1);
    s.create_session(&rec, 0).await.unwrap();
    for n in &cluster.nodes {
        // Replicas refuse nothing here: SCRIPT FLUSH is allowed everywhere.
        command(n.port, &["SCRIPT", "FLUSH"]).unwrap();
    }
    let r = s
        .rotate_refresh(&RotateRequest {
            user_id: rec.user_id,
            session_id: rec.id,
            expected_hash: [1; 32],
            expected_generation: 0,
            new_hash: [2; 32],
            now_ms: rec.created_at_ms + 1,
            new_expires_at_ms: rec.expires_at_ms + 1,
        })
        .await
        .unwrap();
    assert!(
        matches!(r, RotateOutcome::Rotated(ref x) if x.generation == 1),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_rate_limit_admits_a_burst_then_the_steady_rate() {
    let s = store("rate").await;
    let limit = RateLimit {
        count: 10,
        period_ms: 1000,
        burst: 3,
    };
    let t = 1_800_000_000_000;
    for _ in 0..3 {
        assert_eq!(
            s.rate_limit("login:198.51.100.1", t, &limit).await.unwrap(),
            None
        );
    }
    let wait = s
        .rate_limit("login:198.51.100.1", t, &limit)
        .await
        .unwrap()
        .expect("the fourth request of the burst must wait");
    assert!(wait > 0 && wait <= 100, "{wait}");
    assert_eq!(
        s.rate_limit("login:198.51.100.2", t, &limit).await.unwrap(),
        None,
        "other addresses are unaffected"
    );
    // One emission interval later, one more request is admitted.
    assert_eq!(
        s.rate_limit("login:198.51.100.1", t + 100, &limit)
            .await
            .unwrap(),
        None
    );
    assert!(
        s.rate_limit("login:198.51.100.1", t + 100, &limit)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_rate_limit_checks_never_exceed_the_burst() {
    let s = Arc::new(store("rate-par").await);
    let limit = RateLimit {
        count: 1,
        period_ms: 3_600_000,
        burst: 5,
    };
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.rate_limit("register:203.0.113.9", 1_800_000_000_000, &limit)
                .await
                .unwrap()
                .is_none()
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += usize::from(t.await.unwrap());
    }
    assert_eq!(admitted, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_keys_do_not_name_the_email() {
    let s = store("lockkey").await;
    let k = s.lockout_key("ada@example.com");
    assert!(!k.contains("ada"), "{k}");
    assert_eq!(k, s.lockout_key("ada@example.com"));
}

#[test]
fn the_configuration_never_prints_a_node_password() {
    let c = RedisClusterConfig::new(vec![
        "redis://:s3cret-a@10.0.0.1:6379".into(),
        "rediss://app:s3cret-b@redis.internal:6380/0".into(),
        "redis://10.0.0.2:6379".into(),
    ]);
    let text = format!("{c:?}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("redis://:***@10.0.0.1:6379"), "{text}");
    assert!(
        text.contains("rediss://app:***@redis.internal:6380/0"),
        "{text}"
    );
    assert!(text.contains("redis://10.0.0.2:6379"), "{text}");
    // Reached through the engine's configuration too.
    assert!(!format!("{:?}", Some(c)).contains("s3cret"));
}

#[test]
fn prefixes_with_braces_or_spaces_are_refused() {
    let mut c = RedisClusterConfig::new(vec!["redis://127.0.0.1:1".into()]);
    assert!(c.validate().is_ok());
    for bad in ["", "a{b}", "a b", "x}"] {
        c.key_prefix = bad.into();
        assert!(c.validate().is_err(), "{bad}");
    }
    c.key_prefix = "ok".into();
    c.nodes.clear();
    assert!(c.validate().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_unavailable_not_an_internal_error() {
    // A dedicated cluster: it is stopped while the store is connected.
    let cluster = tokio::task::spawn_blocking(|| RedisCluster::start_with(3, 0))
        .await
        .unwrap();
    let s = RedisClusterStore::connect(cluster.config("down"))
        .await
        .unwrap();
    let rec = sample_session(3, 1, 1);
    s.create_session(&rec, 0).await.unwrap();
    cluster.stop_all();
    // Every process has exited (killed and reaped); give the client's
    // connections a bounded moment to notice, then every answer must be a
    // transient error, never a value and never an internal error.
    let mut answered = 0;
    let err = loop {
        match s.get_session(rec.user_id, rec.id, rec.created_at_ms).await {
            Err(e) => break e,
            Ok(_) if answered < 20 => {
                answered += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Ok(v) => panic!("a stopped cluster still answers: {v:?}"),
        }
    };
    assert!(err.is_transient(), "{err:?}");
    let err = s.ping().await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let err = RedisClusterStore::connect(cluster.config("down"))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_estimate_samples_this_deployments_session_keys() {
    let s = store("estimate").await;
    for user in 1..=4u8 {
        for sid in 1..=50u8 {
            s.create_session(&sample_session(user, sid, 1), 0)
                .await
                .unwrap();
        }
    }
    // 200 sessions among whatever else the shared cluster holds: the
    // estimate is statistical (64 samples), so the bounds are wide.
    let n = s.session_count_estimate().await.unwrap().unwrap();
    assert!((100..=300).contains(&n), "estimate {n} for 200 sessions");
    // Another deployment's prefix sees none of them, exactly.
    assert_eq!(
        store("estimate-empty")
            .await
            .session_count_estimate()
            .await
            .unwrap(),
        Some(0)
    );
}

#[test]
fn session_keys_are_told_from_other_keys_of_the_prefix() {
    let p = b"pc:{";
    assert!(is_session_key(b"pc:{0190-aa}:s:AAAA", p));
    assert!(!is_session_key(b"pc:{0190-aa}:idx", p));
    assert!(!is_session_key(b"pc:lock:abcd", p));
    assert!(!is_session_key(b"other:{0190-aa}:s:AAAA", p));
}

#[test]
fn a_script_still_missing_after_its_reload_is_unavailable_not_a_backend_failure() {
    // Seen during a master failover: the reload went to the old owner of
    // the slot and the retry met the new one. That is a 503, not a 500.
    let e = RedisError::from((
        ErrorKind::Server(ServerErrorKind::NoScript),
        "No matching script",
    ));
    assert!(matches!(
        store_err(&e, Duration::from_secs(1)),
        StoreError::Unavailable(_)
    ));
}
