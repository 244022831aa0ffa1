//! In-memory GCRA rate limits for the engine's per-account and per-address
//! limits (mail, expensive routes): the same algorithm, and the same answers,
//! as the Redis Cluster store's script, for one process.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use crate::model::RateLimit;

const SHARDS: usize = 16;
/// Limiters kept per shard at most; beyond, the recovered ones are dropped
/// first, then the ones that recover soonest.
const MAX_ENTRIES_PER_SHARD: usize = 65_536;

pub(crate) struct RateLimits {
    hasher: RandomState,
    /// Key -> theoretical arrival time (ms, fractional).
    shards: Vec<Mutex<HashMap<String, f64>>>,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }
}

impl RateLimits {
    /// Admits one request of `key` at `now_ms`, or returns the milliseconds
    /// to wait.
    pub(crate) fn check(&self, key: &str, now_ms: u64, limit: &RateLimit) -> Option<u64> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        let mut shard = self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = now_ms as f64;
        if shard.len() >= MAX_ENTRIES_PER_SHARD && !shard.contains_key(key) {
            shard.retain(|_, tat| *tat > now);
            if shard.len() >= MAX_ENTRIES_PER_SHARD {
                let mut tats: Vec<f64> = shard.values().copied().collect();
                let cut = tats.len() / 8;
                let (_, threshold, _) = tats.select_nth_unstable_by(cut, f64::total_cmp);
                let threshold = *threshold;
                shard.retain(|_, tat| *tat > threshold);
            }
        }
        let emission = limit.emission_interval_ms();
        let tolerance = emission * f64::from(limit.burst.saturating_sub(1));
        let tat = shard.get(key).copied().unwrap_or(now).max(now);
        if tat - now > tolerance {
            return Some((tat - tolerance - now).ceil().max(1.0) as u64);
        }
        shard.insert(key.to_owned(), tat + emission);
        None
    }

    /// Forgets limiters that have fully recovered.
    pub(crate) fn purge(&self, now_ms: u64) -> u64 {
        let now = now_ms as f64;
        let mut removed = 0;
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let before = s.len();
            s.retain(|_, tat| *tat > now);
            removed += (before - s.len()) as u64;
        }
        removed
    }
}
