//! The Redis Cluster token store: sessions, refresh-token state, lockout and
//! rate-limit counters, signing keys and the refresh-chain secret, shared by
//! every Portcullis pod.
//!
//! **Layout.** Every key of a user carries the hash tag `{<user id>}`, so
//! everything a rotation, a logout, a logout-all or a listing touches lives in
//! one slot and one atomic script covers it:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `<prefix>:{<uid>}:s:<sid>` | hash | one session (see [`scripts`]), `PEXPIRE`d with it |
//! | `<prefix>:{<uid>}:idx` | sorted set | the user's session ids by expiry |
//! | `<prefix>:lock:<sha256(email)>` | hash | lockout counters, expiring with their window |
//! | `<prefix>:rl:<route>:<ip>` | string | a GCRA limiter's theoretical arrival time |
//! | `<prefix>:signing-keys` | hash | `kid -> signing key record` |
//! | `<prefix>:refresh-chain` | string | the refresh-chain secret |
//! | `<prefix>:stash:<hex digest>` | string | a stashed flow state (expiry ++ sealed value), `SET NX PX`, taken with `GETDEL` |
//!
//! **Failure.** Every command has a connection and a response timeout.
//! Connection errors, timeouts, `CLUSTERDOWN`/`TRYAGAIN`/`MASTERDOWN` become
//! [`StoreError::Unavailable`] or [`StoreError::Timeout`], which the engine
//! answers with 503: nothing is accepted that could not be checked. The
//! driver follows `MOVED`/`ASK`, refreshes its slot map and reconnects by
//! itself, so service returns when the cluster does.
//!
//! **Durability.** An acknowledged write is on the master. With
//! `wait_replicas > 0`, a rotation is acknowledged only after `WAIT` (or its
//! timeout), on a connection of its own so the wait does not hold up other
//! commands; see the README for what it costs.
//!
//! **Files.** [`RedisClusterConfig`] is in `config.rs`; connecting and
//! running commands and scripts in `client.rs`; the key layout above in
//! `keys.rs`; replies and driver errors turned into records and
//! [`StoreError`]s in `reply.rs`; the [`TokenStore`] implementation in
//! `token_store.rs`.

mod client;
mod config;
mod keys;
mod reply;
pub(crate) mod scripts;
mod token_store;

#[cfg(any(test, feature = "conformance"))]
pub mod fixture;

#[cfg(test)]
mod tests;

use std::sync::atomic::AtomicUsize;

use redis::Script;
use redis::cluster_async::ClusterConnection;

pub use config::RedisClusterConfig;

#[cfg(doc)]
use crate::{StoreError, TokenStore};

/// Metric names of this backend.
pub mod metric {
    /// Histogram: seconds per Redis operation (one script or command), by `op`.
    pub const COMMAND_SECONDS: &str = "portcullis_redis_command_seconds";
    /// Counter: failed Redis operations by `kind` (timeout, connection, cluster, script, other).
    pub const ERRORS_TOTAL: &str = "portcullis_redis_errors_total";
    /// Counter: connections opened to cluster nodes after start-up (reconnections).
    pub const RECONNECTIONS_TOTAL: &str = "portcullis_redis_reconnections_total";
    /// Counter: rotations whose `WAIT` returned before enough replicas acknowledged.
    pub const WAIT_SHORT_TOTAL: &str = "portcullis_redis_wait_unacknowledged_total";

    /// Gives each metric its help text, and creates the counters at zero.
    pub(crate) fn describe() {
        use metrics::{Unit, describe_counter, describe_histogram};
        describe_histogram!(
            COMMAND_SECONDS,
            Unit::Seconds,
            "Redis operation latency by op"
        );
        describe_counter!(ERRORS_TOTAL, "Failed Redis operations by kind");
        describe_counter!(
            RECONNECTIONS_TOTAL,
            "Connections opened to cluster nodes after start-up"
        );
        describe_counter!(
            WAIT_SHORT_TOTAL,
            "Rotations whose WAIT returned before enough replicas acknowledged"
        );
        for counter in [RECONNECTIONS_TOTAL, WAIT_SHORT_TOTAL] {
            metrics::counter!(counter).increment(0);
        }
    }
}

/// A script and its source: the source is loaded on the node that owns the
/// keys when that node answers `NOSCRIPT`.
struct Lua {
    script: Script,
    source: &'static str,
}

impl Lua {
    fn new(source: &'static str) -> Lua {
        Lua {
            script: Script::new(source),
            source,
        }
    }
}

struct Scripts {
    create: Lua,
    list: Lua,
    delete: Lua,
    delete_all: Lua,
    rotate: Lua,
    failure: Lua,
    rate: Lua,
    get_or_set: Lua,
}

/// The Redis Cluster token store.
pub struct RedisClusterStore {
    conn: ClusterConnection,
    /// Connections for acknowledged rotations (`WAIT` blocks its connection).
    acked: Vec<ClusterConnection>,
    next_acked: AtomicUsize,
    cfg: RedisClusterConfig,
    scripts: Scripts,
}

impl std::fmt::Debug for RedisClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClusterStore")
            .field("key_prefix", &self.cfg.key_prefix)
            .field("wait_replicas", &self.cfg.wait_replicas)
            .finish_non_exhaustive()
    }
}
