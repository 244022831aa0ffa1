use super::*;

const CHEAP: HashScheme = HashScheme::Argon2id { m: 64, t: 1, p: 1 };

fn pw(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

#[tokio::test]
async fn hash_then_verify() {
    let pool = HashPool::new(
        CHEAP,
        PoolSize {
            threads: 1,
            queue: 4,
        },
    )
    .unwrap();
    let h = pool.hash(pw("s3cret-pass")).await.unwrap();
    assert!(h.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    let v = pool.verify(pw("s3cret-pass"), &h).await.unwrap();
    assert_eq!(
        v,
        Verified {
            ok: true,
            rehashed: None
        }
    );
    let v = pool.verify(pw("s3cret-pasS"), &h).await.unwrap();
    assert!(!v.ok);
    assert_eq!(pool.in_flight(), 0);
}

#[tokio::test]
async fn verify_with_other_parameters_returns_the_upgrade() {
    let old = HashPool::new(
        HashScheme::Pbkdf2Sha256 { i: 1000 },
        PoolSize {
            threads: 1,
            queue: 4,
        },
    )
    .unwrap();
    let h = old.hash(pw("upgrade-me")).await.unwrap();
    let pool = HashPool::new(
        CHEAP,
        PoolSize {
            threads: 1,
            queue: 4,
        },
    )
    .unwrap();
    let v = pool.verify(pw("upgrade-me"), &h).await.unwrap();
    assert!(v.ok);
    let new = v.rehashed.expect("rehash");
    assert!(new.starts_with("$argon2id$"));
    assert!(pool.verify(pw("upgrade-me"), &new).await.unwrap().ok);
    // A wrong password never produces a rehash.
    let v = pool.verify(pw("wrong-password"), &h).await.unwrap();
    assert_eq!(
        v,
        Verified {
            ok: false,
            rehashed: None
        }
    );
}

#[tokio::test]
async fn unusable_stored_hash_and_dummy_verify_never_match() {
    let pool = HashPool::new(
        CHEAP,
        PoolSize {
            threads: 1,
            queue: 4,
        },
    )
    .unwrap();
    assert!(!pool.verify(pw("x"), "not-a-hash").await.unwrap().ok);
    assert!(!pool.dummy_verify(pw("anything")).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturated_pool_rejects_at_once() {
    // A slow setting so the first jobs are still running when the rest arrive.
    let slow = HashScheme::Argon2id {
        m: 8 * 1024,
        t: 8,
        p: 1,
    };
    let pool = Arc::new(
        HashPool::new(
            slow,
            PoolSize {
                threads: 1,
                queue: 1,
            },
        )
        .unwrap(),
    );
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let t = Stopwatch::start();
            let r = pool.hash(pw("password-1")).await;
            (
                r.is_ok(),
                matches!(r, Err(PoolError::Overloaded)),
                t.elapsed(),
            )
        }));
    }
    let mut ok = 0;
    let mut rejected = Vec::new();
    for t in tasks {
        let (is_ok, overloaded, took) = t.await.unwrap();
        if is_ok {
            ok += 1;
        } else {
            assert!(overloaded);
            rejected.push(took);
        }
    }
    assert_eq!(ok, 2, "one running plus one queued");
    assert_eq!(rejected.len(), 6);
    assert_eq!(pool.in_flight(), 0);
}

#[test]
fn hash_threads_run_below_the_process_priority() {
    // On its own thread: the priority is the thread's (Linux).
    let (before, after) = std::thread::spawn(|| {
        let tid = rustix::thread::gettid();
        let before = rustix::process::getpriority_process(Some(tid)).unwrap();
        super::lower_priority(5);
        (
            before,
            rustix::process::getpriority_process(Some(tid)).unwrap(),
        )
    })
    .join()
    .unwrap();
    assert_eq!(after, (before + 5).min(19));
    // And the calling thread is untouched.
    let me = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
    assert_eq!(me, before);
}
