//! Stashed flow state ([`TokenStore::stash`](crate::TokenStore::stash)) for
//! one process, in memory: it lives for minutes, and a restart only makes a
//! user start a social sign-in again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{StoreError, StoreResult};

/// Entries kept at most: beyond, a new stash is refused (503) until expired
/// ones are swept, rather than growing without bound.
const MAX_ENTRIES: usize = 200_000;
/// A full stash is swept for expired entries at most this often: a flood
/// of refused stashes costs a lookup each, not a scan each.
const SWEEP_EVERY_MS: u64 = 1000;

/// Key -> (value, expires at ms).
type Entries = HashMap<[u8; 32], (Vec<u8>, u64)>;

struct Inner {
    entries: Entries,
    swept_at_ms: u64,
}

pub(crate) struct Stash {
    inner: Mutex<Inner>,
    cap: usize,
}

impl Default for Stash {
    fn default() -> Self {
        Stash::with_capacity(MAX_ENTRIES)
    }
}

impl Stash {
    pub(crate) fn with_capacity(cap: usize) -> Stash {
        Stash {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                swept_at_ms: 0,
            }),
            cap,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn put(
        &self,
        key: &[u8; 32],
        value: &[u8],
        now_ms: u64,
        expires_at_ms: u64,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        if let Some((_, exp)) = inner.entries.get(key)
            && *exp > now_ms
        {
            return Ok(false);
        }
        if inner.entries.len() >= self.cap {
            if now_ms.saturating_sub(inner.swept_at_ms) >= SWEEP_EVERY_MS {
                inner.entries.retain(|_, (_, exp)| *exp > now_ms);
                inner.swept_at_ms = now_ms;
            }
            if inner.entries.len() >= self.cap {
                return Err(StoreError::Unavailable(
                    "too many flows in progress; try again later".into(),
                ));
            }
        }
        inner.entries.insert(*key, (value.to_vec(), expires_at_ms));
        Ok(true)
    }

    pub(crate) fn take(&self, key: &[u8; 32], now_ms: u64) -> Option<Vec<u8>> {
        let (value, exp) = self.lock().entries.remove(key)?;
        (exp > now_ms).then_some(value)
    }

    /// Drops expired entries; returns how many.
    pub(crate) fn purge(&self, now_ms: u64) -> u64 {
        let mut inner = self.lock();
        let before = inner.entries.len();
        inner.entries.retain(|_, (_, exp)| *exp > now_ms);
        inner.swept_at_ms = now_ms;
        (before - inner.entries.len()) as u64
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key(n: u32) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..4].copy_from_slice(&n.to_be_bytes());
        k
    }

    /// Full: refused with 503 (no growth); swept for expired entries at
    /// most once a second; room again once entries expire.
    #[test]
    fn a_full_stash_refuses_then_recovers_as_entries_expire() {
        let s = Stash::with_capacity(3);
        assert!(s.put(&key(0), b"a", 1_000, 5_000).unwrap());
        assert!(s.put(&key(1), b"b", 1_000, 5_050).unwrap());
        assert!(s.put(&key(2), b"c", 1_000, 20_000).unwrap());
        let full = |r: StoreResult<bool>| matches!(r, Err(StoreError::Unavailable(_)));
        assert!(full(s.put(&key(9), b"v", 1_000, 9_000)));
        // At 5 s the sweep frees the first entry.
        assert!(s.put(&key(3), b"d", 5_000, 9_000).unwrap());
        // The second has expired too, but the last sweep was just now.
        assert!(full(s.put(&key(4), b"e", 5_100, 9_000)));
        assert!(s.put(&key(4), b"e", 6_000, 9_000).unwrap());
        assert_eq!(s.take(&key(2), 6_100).as_deref(), Some(&b"c"[..]));
        assert_eq!(s.take(&key(0), 6_100), None);
    }
}
