//! Stashed flow state ([`TokenStore::stash`](crate::TokenStore::stash)) for
//! one process, in memory: it lives for minutes, and a restart only makes a
//! user start a social sign-in again.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::{StoreError, StoreResult};

/// Entries kept at most: beyond, a new stash is refused (503) until the
/// expired ones are purged, rather than growing without bound.
const MAX_ENTRIES: usize = 200_000;

/// Key -> (value, expires at ms).
type Entries = HashMap<[u8; 32], (Vec<u8>, u64)>;

#[derive(Default)]
pub(crate) struct Stash {
    entries: Mutex<Entries>,
}

impl Stash {
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries
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
        let mut map = self.lock();
        if let Some((_, exp)) = map.get(key)
            && *exp > now_ms
        {
            return Ok(false);
        }
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, exp)| *exp > now_ms);
            if map.len() >= MAX_ENTRIES {
                return Err(StoreError::Unavailable(
                    "too many flows in progress; try again later".into(),
                ));
            }
        }
        map.insert(*key, (value.to_vec(), expires_at_ms));
        Ok(true)
    }

    pub(crate) fn take(&self, key: &[u8; 32], now_ms: u64) -> Option<Vec<u8>> {
        let (value, exp) = self.lock().remove(key)?;
        (exp > now_ms).then_some(value)
    }

    /// Drops expired entries; returns how many.
    pub(crate) fn purge(&self, now_ms: u64) -> u64 {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, (_, exp)| *exp > now_ms);
        (before - map.len()) as u64
    }
}
