//! Connecting to the cluster, and running commands and scripts on it: every
//! operation timed and its errors counted, scripts reloaded on `NOSCRIPT`,
//! `WAIT` after an acknowledged rotation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ErrorKind, RedisError, ScriptInvocation, ServerErrorKind, Value};

use super::reply::{error_kind, fields, session_from, store_err};
use super::{Lua, RedisClusterConfig, RedisClusterStore, Scripts, metric, scripts};
use crate::model::{SessionId, SessionRecord, UserId};
use crate::traits::TokenStore;
use crate::{StoreError, StoreResult};

/// Counts connections the driver opens after start-up: it resolves the
/// node's address each time it (re)connects.
struct CountingResolver {
    started: Arc<AtomicBool>,
}

impl redis::io::AsyncDNSResolver for CountingResolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> redis::RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        if self.started.load(Ordering::Relaxed) {
            metrics::counter!(metric::RECONNECTIONS_TOTAL).increment(1);
        }
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

/// Connections kept for acknowledged rotations when `WAIT` is on.
const ACKED_CONNECTIONS: usize = 4;

impl RedisClusterStore {
    /// Connects to the cluster (the seed nodes, then the nodes they name),
    /// and checks it answers. Fails with `Unavailable` when no node can be
    /// reached; the caller decides whether to retry.
    pub async fn connect(cfg: RedisClusterConfig) -> StoreResult<RedisClusterStore> {
        cfg.validate().map_err(StoreError::Backend)?;
        metric::describe();
        let started = Arc::new(AtomicBool::new(false));
        let client = ClusterClient::builder(cfg.nodes.clone())
            .connection_timeout(cfg.connect_timeout)
            .response_timeout(cfg.command_timeout)
            .overall_response_timeout(Some(cfg.command_timeout.saturating_mul(2)))
            .retries(cfg.retries)
            .min_retry_wait(10)
            .max_retry_wait(200)
            .async_dns_resolver(CountingResolver {
                started: started.clone(),
            })
            .build()
            .map_err(|e| StoreError::Backend(format!("redis cluster configuration: {e}")))?;
        let conn = client
            .get_async_connection()
            .await
            .map_err(|e| store_err(&e, cfg.connect_timeout))?;
        let mut acked = Vec::new();
        if cfg.wait_replicas > 0 {
            for _ in 0..ACKED_CONNECTIONS {
                acked.push(
                    client
                        .get_async_connection()
                        .await
                        .map_err(|e| store_err(&e, cfg.connect_timeout))?,
                );
            }
        }
        started.store(true, Ordering::Relaxed);
        let store = RedisClusterStore {
            conn,
            acked,
            next_acked: AtomicUsize::new(0),
            cfg,
            scripts: Scripts {
                create: Lua::new(scripts::CREATE_SESSION),
                list: Lua::new(scripts::LIST_SESSIONS),
                delete: Lua::new(scripts::DELETE_SESSION),
                delete_all: Lua::new(scripts::DELETE_ALL_SESSIONS),
                rotate: Lua::new(scripts::ROTATE),
                failure: Lua::new(scripts::RECORD_FAILURE),
                rate: Lua::new(scripts::RATE_LIMIT),
                get_or_set: Lua::new(scripts::GET_OR_SET),
            },
        };
        store.ping().await?;
        Ok(store)
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisClusterConfig {
        &self.cfg
    }

    /// Times one Redis operation and counts its errors.
    pub(super) async fn timed<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, RedisError>>,
    ) -> StoreResult<T> {
        let start = crate::stopwatch::Stopwatch::start();
        let r = f.await;
        metrics::histogram!(metric::COMMAND_SECONDS, "op" => op).record(start.elapsed_secs());
        r.map_err(|e| {
            metrics::counter!(metric::ERRORS_TOTAL, "kind" => error_kind(&e)).increment(1);
            store_err(&e, self.cfg.command_timeout)
        })
    }

    pub(super) async fn query<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> StoreResult<T> {
        let mut conn = self.conn.clone();
        self.timed(op, cmd.query_async(&mut conn)).await
    }

    /// Runs `lua` by SHA with `key` as its first key and the rest from `build`.
    ///
    /// On `NOSCRIPT` the driver loads the script on the primaries it knows
    /// and retries; right after a failover it may not know the new master
    /// yet, which then answers `NOSCRIPT` again. So the script is loaded on
    /// the master that owns `key`, and run once more, up to three times
    /// while the slot map is in flux. A `NOSCRIPT` that outlasts them is a
    /// failover still settling: 503, like the cluster's other transient
    /// answers (see [`store_err`]), never a 500.
    pub(super) async fn eval<T: redis::FromRedisValue>(
        &self,
        op: &'static str,
        lua: &Lua,
        key: &str,
        conn: &mut ClusterConnection,
        build: impl FnOnce(&mut ScriptInvocation<'_>),
    ) -> StoreResult<T> {
        let mut inv = lua.script.key(key);
        build(&mut inv);
        self.timed(op, async {
            let no_script = |r: &redis::RedisResult<T>| {
                matches!(r, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript))
            };
            let mut r = inv.invoke_async(&mut *conn).await;
            for _ in 0..3 {
                if !no_script(&r) {
                    break;
                }
                let owner =
                    SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
                conn.route_command(
                    redis::cmd("SCRIPT").arg("LOAD").arg(lua.source).clone(),
                    RoutingInfo::SingleNode(owner),
                )
                .await?;
                r = inv.invoke_async(&mut *conn).await;
            }
            r
        })
        .await
    }

    /// Reads the session and parses it; `None` when absent.
    pub(super) async fn read_session(
        &self,
        user: UserId,
        sid: SessionId,
    ) -> StoreResult<Option<SessionRecord>> {
        let v: Value = self
            .query(
                "get_session",
                redis::cmd("HGETALL").arg(self.session_key(user, sid)),
            )
            .await?;
        let f = fields(v)?;
        if f.is_empty() {
            return Ok(None);
        }
        session_from(user, sid, &f).map(Some)
    }

    pub(super) async fn wait_for_replicas(&self, conn: &mut ClusterConnection, key: &str) {
        // Route WAIT to the master that ran the rotation, on the same connection.
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
        let timeout_ms = crate::ms(self.cfg.wait_timeout);
        let mut wait = redis::cmd("WAIT");
        wait.arg(self.cfg.wait_replicas).arg(timeout_ms);
        let acked = self
            .timed(
                "wait",
                conn.route_command(wait, RoutingInfo::SingleNode(route)),
            )
            .await;
        match acked {
            Ok(Value::Int(n)) if n >= i64::from(self.cfg.wait_replicas) => {}
            Ok(_) => metrics::counter!(metric::WAIT_SHORT_TOTAL).increment(1),
            Err(e) => {
                metrics::counter!(metric::WAIT_SHORT_TOTAL).increment(1);
                tracing::warn!(error = %e, "WAIT after a rotation failed; the rotation stands");
            }
        }
    }
}
