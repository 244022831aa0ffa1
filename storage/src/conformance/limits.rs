//! Counter checks: the shared GCRA rate limiter and the login lockout
//! (limits, back-off, the window, and concurrent failures).

use super::{Backends, T0};
use crate::model::{LockoutPolicy, RateLimit};

/// The shared GCRA limiter: a burst passes, the next request is told how
/// long to wait, the rate recovers, and keys are independent.
pub async fn rate_limit_admits_a_burst_then_asks_to_wait(b: &Backends) {
    let limit = RateLimit {
        count: 1,
        period_ms: 60_000,
        burst: 2,
    };
    let key = "conformance:mail:abc";
    assert_eq!(b.tokens.rate_limit(key, T0, &limit).await.unwrap(), None);
    assert_eq!(b.tokens.rate_limit(key, T0, &limit).await.unwrap(), None);
    let wait = b.tokens.rate_limit(key, T0, &limit).await.unwrap();
    assert_eq!(wait, Some(60_000));
    assert_eq!(
        b.tokens.rate_limit(key, T0 + 30_000, &limit).await.unwrap(),
        Some(30_000)
    );
    assert_eq!(
        b.tokens
            .rate_limit("conformance:mail:other", T0, &limit)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        b.tokens.rate_limit(key, T0 + 60_000, &limit).await.unwrap(),
        None
    );
    assert!(
        b.tokens
            .rate_limit(key, T0 + 60_000, &limit)
            .await
            .unwrap()
            .is_some()
    );
}

/// Failures lock the key at the limit, with doubling lock durations.
pub async fn lockout_counts_locks_and_backs_off(b: &Backends) {
    let p = LockoutPolicy::default();
    let key = "locked@example.com";
    let mut now = T0;
    assert_eq!(
        b.tokens
            .lockout_status(key, now)
            .await
            .unwrap()
            .locked_until_ms,
        None
    );
    for i in 1..=4 {
        let st = b.tokens.record_login_failure(key, now, &p).await.unwrap();
        assert_eq!(st.failures, i);
        assert_eq!(st.locked_until_ms, None);
        now += 1_000;
    }
    let st = b.tokens.record_login_failure(key, now, &p).await.unwrap();
    assert_eq!(st.locked_until_ms, Some(now + 60_000));
    assert_eq!(st.failures, 5, "the locking failure is counted");
    // A failure during the lock is not counted and does not extend it.
    let during = b
        .tokens
        .record_login_failure(key, now + 1, &p)
        .await
        .unwrap();
    assert_eq!(during.failures, 0);
    assert_eq!(during.locked_until_ms, Some(now + 60_000));
    let status = b.tokens.lockout_status(key, now + 59_999).await.unwrap();
    assert_eq!(status.locked_until_ms, Some(now + 60_000));
    assert_eq!(
        b.tokens
            .lockout_status(key, now + 60_000)
            .await
            .unwrap()
            .locked_until_ms,
        None,
        "the lock ends with time"
    );
    // Five more failures lock again, twice as long.
    now += 60_000;
    let mut last = Default::default();
    for _ in 0..5 {
        last = b.tokens.record_login_failure(key, now, &p).await.unwrap();
    }
    assert_eq!(last.locked_until_ms, Some(now + 120_000));
    // Success clears everything.
    b.tokens.clear_login_failures(key).await.unwrap();
    let st = b.tokens.lockout_status(key, now).await.unwrap();
    assert_eq!(st.locked_until_ms, None);
    assert_eq!(st.failures, 0);
    // Other keys are independent.
    let other = b
        .tokens
        .lockout_status("other@example.com", now)
        .await
        .unwrap();
    assert_eq!(other.failures, 0);
}

/// Failures older than the window are forgotten.
pub async fn lockout_window_expires_failures(b: &Backends) {
    let p = LockoutPolicy::default();
    let key = "window@example.com";
    for _ in 0..4 {
        b.tokens.record_login_failure(key, T0, &p).await.unwrap();
    }
    let later = T0 + p.window_ms + 1;
    let st = b.tokens.record_login_failure(key, later, &p).await.unwrap();
    assert_eq!(st.failures, 1);
    assert_eq!(st.locked_until_ms, None);
}

/// Parallel failures are each counted: the limit cannot be raced past.
pub async fn lockout_concurrent_failures_are_all_counted(b: &Backends) {
    let p = LockoutPolicy {
        max_failures: 1_000,
        ..LockoutPolicy::default()
    };
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let tokens = b.tokens.clone();
        tasks.push(tokio::spawn(async move {
            tokens
                .record_login_failure("parallel@example.com", T0, &p)
                .await
                .unwrap()
                .failures
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<u32>>());
}
