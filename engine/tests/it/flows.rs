use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::clock::ManualClock;
use portcullis_engine::hashpool::HashScheme;
use portcullis_engine::ops::keys::Jwks;
use portcullis_engine::ops::users::Me;
use portcullis_engine::{AuthError, TokenProblem};
use portcullis_storage::UserStore;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_registrations_of_one_email_store_one_user() {
    let t = Arc::new(TestEngine::start().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.engine
                .call(register_cmd("Same@Example.com", &format!("password-{i}")))
                .await
        }));
    }
    let mut created = 0;
    let mut taken = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(AuthError::EmailTaken) => taken += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((created, taken), (1, 49));
    assert_eq!(t.store.user_count().unwrap(), 1);
    assert!(
        t.store
            .find_user_id_by_email("same@example.com")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_with_an_outdated_hash_upgrades_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.password_hash = HashScheme::Pbkdf2Sha256 { i: 1000 };
    let t = TestEngine::start_with(dir, cfg, ManualClock::new(1_800_000_000_000)).await;
    let (user, _) = t.register("upgrade@example.com", "old-scheme-pw").await;
    let (dir, clock) = t.stop().await;

    let cfg = config(dir.path());
    let t = TestEngine::start_with(dir, cfg, clock).await;
    let id = portcullis_storage::UserId::parse(&user.id).unwrap();
    let before = t.store.get_user(id).await.unwrap().unwrap();
    assert!(before.password_hash.starts_with("$pbkdf2-sha256$i=1000,"));
    granted(
        t.engine
            .call(login_cmd("upgrade@example.com", "old-scheme-pw"))
            .await
            .unwrap(),
    );
    let after = t.store.get_user(id).await.unwrap().unwrap();
    assert!(
        after
            .password_hash
            .starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{}",
        after.password_hash
    );
    assert_eq!(after.version, before.version + 1);
    // The new hash works, and a wrong password still fails.
    granted(
        t.engine
            .call(login_cmd("upgrade@example.com", "old-scheme-pw"))
            .await
            .unwrap(),
    );
    assert!(matches!(
        t.engine
            .call(login_cmd("upgrade@example.com", "wrong-password"))
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    assert_eq!(
        t.store.get_user(id).await.unwrap().unwrap().version,
        after.version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_keys_survive_restarts() {
    let t = TestEngine::start().await;
    let jwks = t.engine.call(Jwks).await.unwrap();
    let (_, grant) = t.register("keys@example.com", "password-1").await;
    let (dir, clock) = t.stop().await;
    let t = TestEngine::start_with(dir, config_for_restart(), clock).await;
    assert_eq!(
        t.engine.call(Jwks).await.unwrap(),
        jwks,
        "same keys after restart"
    );
    // A token issued before the restart is still accepted.
    let me = t
        .engine
        .call(Me {
            bearer: Some(grant.access_token),
        })
        .await
        .unwrap();
    assert_eq!(me.email, "keys@example.com");
}

fn config_for_restart() -> portcullis_engine::EngineConfig {
    // `start_with` puts the data dir in the TempDir the test moves in.
    let mut cfg = portcullis_engine::EngineConfig::new("replaced-by-start-with");
    cfg.password_hash = CHEAP;
    cfg.shards = 4;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_counts_unknown_emails_too_and_ends_with_time() {
    let t = TestEngine::start().await;
    t.register("real@example.com", "right-password").await;
    for email in ["real@example.com", "ghost@example.com"] {
        for _ in 0..5 {
            let r = t.engine.call(login_cmd(email, "wrong-password")).await;
            assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
        }
        let r = t.engine.call(login_cmd(email, "right-password")).await;
        assert!(
            matches!(
                r,
                Err(AuthError::TooManyAttempts {
                    retry_after_secs: 60
                })
            ),
            "{email}: {r:?}"
        );
    }
    t.clock.advance(Duration::from_secs(60));
    granted(
        t.engine
            .call(login_cmd("real@example.com", "right-password"))
            .await
            .unwrap(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_after_grace_revokes_the_session_everywhere() {
    let t = TestEngine::start().await;
    let (_, g0) = t.register("rot@example.com", "password-1").await;
    let g1 = granted(t.engine.call(refresh_cmd(&g0.refresh_token)).await.unwrap());
    assert_ne!(*g1.refresh_token, *g0.refresh_token);
    // Within the grace window the old token is refused without harm.
    assert!(matches!(
        t.engine.call(refresh_cmd(&g0.refresh_token)).await,
        Err(AuthError::InvalidGrant)
    ));
    let me = t
        .engine
        .call(Me {
            bearer: Some(g1.access_token.clone()),
        })
        .await;
    assert!(me.is_ok());
    t.clock.advance(Duration::from_millis(2_001));
    assert!(matches!(
        t.engine.call(refresh_cmd(&g0.refresh_token)).await,
        Err(AuthError::InvalidGrant)
    ));
    // Reuse revoked the session: the newest refresh token and the access token are dead.
    assert!(matches!(
        t.engine.call(refresh_cmd(&g1.refresh_token)).await,
        Err(AuthError::InvalidGrant)
    ));
    let me = t
        .engine
        .call(Me {
            bearer: Some(g1.access_token),
        })
        .await;
    assert!(
        matches!(me, Err(AuthError::Unauthenticated(TokenProblem::Revoked))),
        "{me:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_hash_pool_answers_overloaded_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.password_hash = HashScheme::Argon2id {
        m: 8 * 1024,
        t: 4,
        p: 1,
    };
    cfg.hash_threads = 1;
    cfg.hash_queue = 1;
    let t = Arc::new(TestEngine::start_with(dir, cfg, ManualClock::new(1_800_000_000_000)).await);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            // Distinct emails: distinct partitions, so all reach the pool at once.
            t.engine
                .call(login_cmd(&format!("u{i}@example.com"), "password-1"))
                .await
        }));
    }
    let mut overloaded = 0;
    let mut invalid = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(AuthError::Overloaded { .. }) => overloaded += 1,
            Err(AuthError::InvalidCredentials) => invalid += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(overloaded >= 8, "overloaded={overloaded} invalid={invalid}");
    assert_eq!(overloaded + invalid, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thief_cannot_outrun_reuse_detection_by_rotating_many_times() {
    let t = TestEngine::start().await;
    let (_, stolen) = t.register("victim@example.com", "password-1").await;
    // The thief uses the stolen token first and rotates it many times.
    let mut thief = stolen.refresh_token.clone();
    for _ in 0..25 {
        thief = granted(t.engine.call(refresh_cmd(&thief)).await.unwrap()).refresh_token;
    }
    t.clock.advance(Duration::from_secs(60));
    // The victim comes back with its 25-rotations-old token: reuse, revoked.
    assert!(matches!(
        t.engine.call(refresh_cmd(&stolen.refresh_token)).await,
        Err(AuthError::InvalidGrant)
    ));
    assert!(matches!(
        t.engine.call(refresh_cmd(&thief)).await,
        Err(AuthError::InvalidGrant)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_refresh_tokens_change_nothing() {
    let t = TestEngine::start().await;
    let (_, g) = t.register("forge@example.com", "password-1").await;
    // Same user, session and generation, another secret: not reuse, just invalid.
    let parts: Vec<&str> = g.refresh_token.split('.').collect();
    let forged = format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], "A".repeat(43));
    assert!(matches!(
        t.engine.call(refresh_cmd(&forged)).await,
        Err(AuthError::InvalidGrant)
    ));
    let older = format!("{}.{}.0.{}", parts[0], parts[1], "B".repeat(43));
    t.clock.advance(Duration::from_secs(60));
    assert!(matches!(
        t.engine.call(refresh_cmd(&older)).await,
        Err(AuthError::InvalidGrant)
    ));
    // The session survived both.
    granted(t.engine.call(refresh_cmd(&g.refresh_token)).await.unwrap());
}
