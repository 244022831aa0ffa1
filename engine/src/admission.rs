//! Admission of logins: at most [`LOGINS_PER_ACCOUNT`] of one account in
//! flight per process, and the gauge of logins in flight.

use std::sync::Arc;

use crate::metrics as m;

/// Logins of one account admitted at once, per process: one verifying and
/// one waiting. More would only wait behind them in the account's
/// partition while holding places in the hash pool that other accounts'
/// logins could use; they are refused (429, not counted as attempts).
pub(crate) const LOGINS_PER_ACCOUNT: u32 = 2;

/// Counts of admitted logins per account (normalized email), bounded by
/// what is in flight: an entry lives while a login of it does.
pub(crate) struct PerAccount {
    hasher: std::hash::RandomState,
    shards: Vec<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

impl Default for PerAccount {
    fn default() -> Self {
        PerAccount {
            hasher: std::hash::RandomState::new(),
            shards: (0..16).map(|_| Default::default()).collect(),
        }
    }
}

impl PerAccount {
    /// Admits one more login of `key`, or `None` when [`LOGINS_PER_ACCOUNT`]
    /// are in flight.
    pub(crate) fn enter(self: &Arc<Self>, key: &str) -> Option<AccountSlot> {
        use std::hash::BuildHasher as _;
        let shard = (self.hasher.hash_one(key) as usize) % self.shards.len();
        let mut map = self.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(key.to_owned()).or_default();
        if *n >= LOGINS_PER_ACCOUNT {
            return None;
        }
        *n += 1;
        Some(AccountSlot {
            owner: self.clone(),
            shard,
            key: key.to_owned(),
        })
    }
}

/// One admitted login of an account; leaves on drop.
pub(crate) struct AccountSlot {
    owner: Arc<PerAccount>,
    shard: usize,
    key: String,
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut map = self.owner.shards[self.shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Counts a login in `portcullis_engine_logins_in_flight` while it lives.
pub(crate) struct InFlight(metrics::Gauge);

impl InFlight {
    pub(crate) fn enter() -> InFlight {
        let g = metrics::gauge!(m::LOGINS_IN_FLIGHT);
        g.increment(1.0);
        InFlight(g)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
