//! In-memory login lockout counters, sharded by key.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use crate::model::{LockoutPolicy, LockoutStatus};

const SHARDS: usize = 16;
/// Entries kept at most; beyond, finished entries are purged first.
const MAX_ENTRIES_PER_SHARD: usize = 65_536;

#[derive(Default, Clone, Copy)]
struct Entry {
    failures: u32,
    window_start_ms: u64,
    locked_until_ms: u64,
    lock_count: u32,
}

impl Entry {
    fn status(&self, now_ms: u64, window_ms: u64) -> LockoutStatus {
        LockoutStatus {
            failures: if now_ms.saturating_sub(self.window_start_ms) < window_ms {
                self.failures
            } else {
                0
            },
            locked_until_ms: (self.locked_until_ms > now_ms).then_some(self.locked_until_ms),
        }
    }

    fn finished(&self, now_ms: u64, window_ms: u64) -> bool {
        self.locked_until_ms.saturating_add(window_ms) <= now_ms
            && self.window_start_ms.saturating_add(window_ms) <= now_ms
    }
}

pub(crate) struct Lockouts {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    /// Window of the last policy seen (for status reads, which get no policy).
    window_ms: std::sync::atomic::AtomicU64,
}

impl Default for Lockouts {
    fn default() -> Self {
        Lockouts {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            window_ms: std::sync::atomic::AtomicU64::new(LockoutPolicy::default().window_ms),
        }
    }
}

impl Lockouts {
    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn window(&self) -> u64 {
        self.window_ms.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn status(&self, key: &str, now_ms: u64) -> LockoutStatus {
        self.shard(key)
            .get(key)
            .map(|e| e.status(now_ms, self.window()))
            .unwrap_or_default()
    }

    pub(crate) fn record_failure(
        &self,
        key: &str,
        now_ms: u64,
        p: &LockoutPolicy,
    ) -> LockoutStatus {
        self.window_ms
            .store(p.window_ms, std::sync::atomic::Ordering::Relaxed);
        let mut shard = self.shard(key);
        if shard.len() >= MAX_ENTRIES_PER_SHARD && !shard.contains_key(key) {
            shard.retain(|_, e| !e.finished(now_ms, p.window_ms));
            if shard.len() >= MAX_ENTRIES_PER_SHARD {
                // Still full of active entries (a spray of failures over many
                // emails): drop the eighth whose windows started first, so the
                // table stays bounded and this pass stays rare.
                let mut starts: Vec<u64> = shard.values().map(|e| e.window_start_ms).collect();
                let cut = starts.len() / 8;
                let (_, threshold, _) = starts.select_nth_unstable(cut);
                let threshold = *threshold;
                shard.retain(|_, e| e.window_start_ms > threshold);
            }
        }
        let e = shard.entry(key.to_owned()).or_default();
        if e.locked_until_ms > now_ms {
            // Locked: the attempt should not have been made; it is not counted.
            return LockoutStatus {
                failures: 0,
                locked_until_ms: Some(e.locked_until_ms),
            };
        }
        if e.lock_count > 0 && now_ms > e.locked_until_ms.saturating_add(p.window_ms) {
            // Quiet for a whole window after the last lock: start over.
            e.lock_count = 0;
        }
        if now_ms.saturating_sub(e.window_start_ms) >= p.window_ms {
            e.failures = 0;
            e.window_start_ms = now_ms;
        }
        e.failures += 1;
        let failures = e.failures;
        if e.failures >= p.max_failures {
            e.lock_count += 1;
            e.locked_until_ms = now_ms.saturating_add(p.lock_duration_ms(e.lock_count));
            e.failures = 0;
            e.window_start_ms = now_ms;
        }
        LockoutStatus {
            failures,
            locked_until_ms: (e.locked_until_ms > now_ms).then_some(e.locked_until_ms),
        }
    }

    pub(crate) fn clear(&self, key: &str) {
        self.shard(key).remove(key);
    }

    pub(crate) fn purge(&self, now_ms: u64) -> u64 {
        let window = self.window();
        let mut removed = 0;
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = s.len();
            s.retain(|_, e| !e.finished(now_ms, window));
            removed += (before - s.len()) as u64;
        }
        removed
    }
}
