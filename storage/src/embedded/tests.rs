use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::conformance::{Backends, sample_session, sample_user};

async fn fresh() -> Backends {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    Backends {
        users: store.clone(),
        tokens: store,
        guard: Box::new(dir),
    }
}

crate::conformance_suite!(fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let u = sample_user(1, "durable@example.com");
    let s = sample_session(1, 1, 1);
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.create_user(&u).await.unwrap();
        store.create_session(&s, 0).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.get_user(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(
        store
            .find_user_id_by_email("durable@example.com")
            .await
            .unwrap(),
        Some(u.id)
    );
    assert_eq!(
        store
            .get_session(s.user_id, s.id, s.created_at_ms)
            .await
            .unwrap(),
        Some(s)
    );
    assert_eq!(store.user_count().unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_of_the_same_directory_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let _first = EmbeddedStore::open(dir.path()).unwrap();
    let err = EmbeddedStore::open(dir.path()).unwrap_err();
    assert!(
        err.to_string().contains("in use by another process"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_key_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let key = SigningKeyRecord {
        kid: "abc_DEF-123".into(),
        pkcs8: vec![7; 83],
        public: [7; 32],
        created_at_ms: 1,
        not_before_ms: 1,
        expires_at_ms: None,
    };
    store.save_signing_key(&key).await.unwrap();
    let meta = std::fs::metadata(dir.path().join("keys/abc_DEF-123.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let dmeta = std::fs::metadata(dir.path().join("keys")).unwrap();
    assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
    // A key id that could escape the directory is refused.
    let mut evil = key.clone();
    evil.kid = "../../etc/passwd".into();
    assert!(store.save_signing_key(&evil).await.is_err());
    // A loosened file is tightened on load.
    std::fs::set_permissions(
        dir.path().join("keys/abc_DEF-123.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(store.load_signing_keys().await.unwrap(), vec![key]);
    let meta = std::fs::metadata(dir.path().join("keys/abc_DEF-123.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_group_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let mut tasks = Vec::new();
    for i in 0..500u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut u = sample_user(0, &format!("u{i}@example.com"));
            u.id = UserId([
                (i % 256) as u8,
                (i / 256) as u8,
                1,
                2,
                3,
                4,
                5,
                6,
                7,
                8,
                9,
                10,
                11,
                12,
                13,
                14,
            ]);
            store.create_user(&u).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(store.user_count().unwrap(), 500);
}

#[tokio::test]
async fn the_session_estimate_counts_stored_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.session_count_estimate().await.unwrap(), Some(0));
    for sid in 1..=5 {
        s.create_session(&sample_session(1, sid, 1), 0)
            .await
            .unwrap();
    }
    assert_eq!(s.session_count_estimate().await.unwrap(), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_mail_survives_a_reopen_until_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut u = sample_user(7, "outbox@example.com");
    let m = crate::conformance::sample_mail(7, u.id, 1);
    {
        let s = EmbeddedStore::open(dir.path()).unwrap();
        s.create_user(&u).await.unwrap();
        u.account.outbox = vec![m.id];
        u.version = 2;
        s.update_user_with_mail(&u, 1, std::slice::from_ref(&m))
            .await
            .unwrap();
        // Acknowledged, then the process goes away without a flush.
    }
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.due_mail(u64::MAX, 10).await.unwrap(), vec![m.clone()]);
    assert_eq!(
        s.get_user(u.id).await.unwrap().unwrap().account.outbox,
        vec![m.id]
    );
    s.delete_mail(&m).await.unwrap();
    drop(s);
    let s = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(s.due_mail(u64::MAX, 10).await.unwrap(), vec![]);
}

/// The writer's own count and last-use order of a user's sessions agree
/// with the store through creations, rotations, deletions and purges: the
/// cap always ends exactly the least recently used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cap_follows_use_without_rescanning() {
    use crate::model::RotateRequest;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let cap = 5;
    let user = sample_session(7, 0, 0).user_id;
    // (last use, id) of every session the model says is live.
    let mut model: Vec<(u64, u8)> = Vec::new();
    let mut now = 1_000u64;
    for n in 1..=30u8 {
        now += 10;
        let mut s = sample_session(7, n, n);
        s.created_at_ms = now;
        s.last_used_at_ms = now;
        s.rotated_at_ms = now;
        s.expires_at_ms = u64::MAX / 2;
        s.max_expires_at_ms = u64::MAX / 2;
        let evicted = store.create_session(&s, cap).await.unwrap();
        model.push((now, n));
        model.sort_unstable();
        let mut expected = Vec::new();
        while model.len() > cap {
            expected.push(SessionId([model.remove(0).1; 16]));
        }
        assert_eq!(evicted, expected, "after session {n}");
        // Use the oldest remaining session now and then.
        if n % 3 == 0 {
            now += 1;
            let (_, oldest) = model[0];
            let r = store
                .rotate_refresh(&RotateRequest {
                    user_id: user,
                    session_id: SessionId([oldest; 16]),
                    expected_hash: [oldest; 32],
                    expected_generation: 0,
                    new_hash: [oldest; 32],
                    now_ms: now,
                    new_expires_at_ms: u64::MAX / 2,
                })
                .await
                .unwrap();
            // Only a session's first rotation matches [id; 32] at generation 0.
            if matches!(r, crate::model::RotateOutcome::Rotated(_)) {
                model[0].0 = now;
                model.sort_unstable();
            }
        }
        // And delete one now and then.
        if n % 7 == 0 {
            let (_, gone) = model.remove(model.len() / 2);
            assert!(
                store
                    .delete_session(user, SessionId([gone; 16]))
                    .await
                    .unwrap()
            );
        }
        let mut live: Vec<u8> = store
            .list_sessions(user, now)
            .await
            .unwrap()
            .iter()
            .map(|s| s.id.0[0])
            .collect();
        live.sort_unstable();
        let mut want: Vec<u8> = model.iter().map(|(_, id)| *id).collect();
        want.sort_unstable();
        assert_eq!(live, want, "after session {n}");
    }
}
