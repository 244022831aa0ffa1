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

pub(crate) mod scripts;

#[cfg(any(test, feature = "conformance"))]
pub mod fixture;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{ErrorKind, RedisError, Script, ScriptInvocation, ServerErrorKind, Value};

use crate::codec;
use crate::model::{
    LockoutPolicy, LockoutStatus, RateLimit, RotateOutcome, RotateRequest, SessionId,
    SessionRecord, SigningKeyRecord, UserId,
};
use crate::traits::TokenStore;
use crate::{StoreError, StoreResult};

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

/// How to reach and use the cluster. Its `Debug` hides the password of
/// every node URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisClusterConfig {
    /// Seed nodes (`redis://host:port`, `redis://:password@host:port`,
    /// `redis://user:password@host:port`). One reachable node is enough.
    pub nodes: Vec<String>,
    /// Prefix of every key, so several deployments (or tests) share a cluster.
    pub key_prefix: String,
    /// Longest wait for a TCP connection to a node.
    pub connect_timeout: Duration,
    /// Longest wait for one answer, retries included.
    pub command_timeout: Duration,
    /// Retries of a command after a connection error or redirection.
    pub retries: u32,
    /// Replicas that must acknowledge a rotation (`WAIT`); 0 turns it off.
    pub wait_replicas: u32,
    /// Longest `WAIT`.
    pub wait_timeout: Duration,
}

impl std::fmt::Debug for RedisClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|n| redact_url(n)).collect();
        f.debug_struct("RedisClusterConfig")
            .field("nodes", &nodes)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("retries", &self.retries)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

/// `scheme://user:secret@host` as `scheme://user:***@host`; a URL without a
/// password as it is.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The credentials end at the last '@' before the path.
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let credentials = authority
        .rfind('@')
        .and_then(|at| Some((at, authority[..at].split_once(':')?.0)));
    match credentials {
        Some((at, user)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

impl RedisClusterConfig {
    /// Defaults for the given seed nodes.
    pub fn new(nodes: Vec<String>) -> RedisClusterConfig {
        RedisClusterConfig {
            nodes,
            key_prefix: "portcullis".into(),
            connect_timeout: Duration::from_millis(1000),
            command_timeout: Duration::from_millis(1000),
            retries: 2,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(50),
        }
    }

    /// Checks the prefix: printable, no hash-tag braces, no spaces.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("no Redis Cluster nodes given".into());
        }
        let p = &self.key_prefix;
        if p.is_empty()
            || p.len() > 64
            || !p
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
        {
            return Err(format!(
                "Redis key prefix '{p}' must be 1-64 printable characters without braces or spaces"
            ));
        }
        Ok(())
    }
}

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

/// Connections kept for acknowledged rotations when `WAIT` is on.
const ACKED_CONNECTIONS: usize = 4;

/// Maps a driver error to the storage error the engine understands.
fn store_err(e: &RedisError, timeout: Duration) -> StoreError {
    if e.is_timeout() {
        return StoreError::Timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
    }
    match e.kind() {
        ErrorKind::Io
        | ErrorKind::ClusterConnectionNotFound
        | ErrorKind::Server(
            ServerErrorKind::ClusterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            // Only after `eval` reloaded the script and it was still
            // missing: the key's master is changing under it.
            | ServerErrorKind::NoScript,
        ) => StoreError::Unavailable(format!("redis cluster: {e}")),
        _ => StoreError::Backend(format!("redis cluster: {e}")),
    }
}

fn error_kind(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly)
        )
    {
        "cluster"
    } else if matches!(
        e.kind(),
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound
    ) {
        "connection"
    } else if matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ResponseError)) {
        "script"
    } else {
        "other"
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// `field -> value` of a hash reply (RESP2 flat array or RESP3 map).
fn fields(v: Value) -> StoreResult<HashMap<String, Vec<u8>>> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(a) => {
            if a.len() % 2 != 0 {
                return Err(corrupt("hash reply has an odd length"));
            }
            let mut it = a.into_iter();
            let mut out = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            out
        }
        Value::Nil => Vec::new(),
        _ => return Err(corrupt("unexpected reply for a hash")),
    };
    let mut out = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        match (k, v) {
            (Value::BulkString(k), Value::BulkString(v)) => {
                let k = String::from_utf8(k).map_err(|_| corrupt("hash field is not UTF-8"))?;
                out.insert(k, v);
            }
            _ => return Err(corrupt("hash field or value is not a string")),
        }
    }
    Ok(out)
}

fn num(f: &HashMap<String, Vec<u8>>, k: &str) -> StoreResult<u64> {
    let v = f
        .get(k)
        .ok_or_else(|| corrupt(&format!("session field {k} missing")))?;
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(&format!("session field {k} is not a number")))
}

fn opt_text(f: &HashMap<String, Vec<u8>>, k: &str) -> StoreResult<Option<String>> {
    f.get(k)
        .map(|v| String::from_utf8(v.clone()).map_err(|_| corrupt("session text is not UTF-8")))
        .transpose()
}

fn session_from(
    user_id: UserId,
    id: SessionId,
    f: &HashMap<String, Vec<u8>>,
) -> StoreResult<SessionRecord> {
    let refresh_hash: [u8; 32] = f
        .get("h")
        .and_then(|h| h.as_slice().try_into().ok())
        .ok_or_else(|| corrupt("session refresh hash missing or malformed"))?;
    Ok(SessionRecord {
        user_id,
        id,
        created_at_ms: num(f, "c")?,
        last_used_at_ms: num(f, "u")?,
        expires_at_ms: num(f, "e")?,
        max_expires_at_ms: num(f, "m")?,
        ip: opt_text(f, "ip")?,
        user_agent: opt_text(f, "ua")?,
        refresh_hash,
        generation: num(f, "g")?,
        rotated_at_ms: num(f, "r")?,
        // Sessions opened before these fields existed were password sign-ins.
        amr: match opt_text(f, "a")? {
            Some(a) => a
                .split(' ')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec!["pwd".to_owned()],
        },
        auth_time_ms: match f.get("t") {
            Some(_) => num(f, "t")?,
            None => num(f, "c")?,
        },
    })
}

fn int(v: &Value) -> StoreResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(corrupt("expected an integer reply")),
    }
}

/// Keys sampled per [`TokenStore::session_count_estimate`].
const SESSION_SAMPLES: u32 = 64;

/// Whether `key` is a session hash (`<prefix>:{<uid>}:s:<sid>`) of this deployment.
fn is_session_key(key: &[u8], prefix_with_brace: &[u8]) -> bool {
    key.starts_with(prefix_with_brace) && key.windows(4).any(|w| w == b"}:s:")
}

fn lockout_key_digest(key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

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

    fn user_tag(&self, user: UserId) -> String {
        format!("{}:{{{}}}", self.cfg.key_prefix, user.to_uuid_string())
    }

    fn session_prefix(&self, user: UserId) -> String {
        format!("{}:s:", self.user_tag(user))
    }

    fn session_key(&self, user: UserId, sid: SessionId) -> String {
        format!("{}:s:{}", self.user_tag(user), sid.to_b64())
    }

    fn index_key(&self, user: UserId) -> String {
        format!("{}:idx", self.user_tag(user))
    }

    fn lockout_key(&self, key: &str) -> String {
        format!("{}:lock:{}", self.cfg.key_prefix, lockout_key_digest(key))
    }

    fn signing_keys_key(&self) -> String {
        format!("{}:signing-keys", self.cfg.key_prefix)
    }

    /// Times one Redis operation and counts its errors.
    async fn timed<T>(
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

    async fn query<T: redis::FromRedisValue>(
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
    async fn eval<T: redis::FromRedisValue>(
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
    async fn read_session(
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

    async fn wait_for_replicas(&self, conn: &mut ClusterConnection, key: &str) {
        // Route WAIT to the master that ran the rotation, on the same connection.
        let route = SingleNodeRoutingInfo::SpecificNode(Route::with_key(key, SlotAddr::Master));
        let timeout_ms = u64::try_from(self.cfg.wait_timeout.as_millis()).unwrap_or(u64::MAX);
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

#[async_trait]
impl TokenStore for RedisClusterStore {
    fn is_local_authority(&self) -> bool {
        false
    }

    async fn create_session(
        &self,
        s: &SessionRecord,
        max_sessions: usize,
    ) -> StoreResult<Vec<SessionId>> {
        let end = s.expires_at_ms.min(s.max_expires_at_ms);
        let ttl = end.saturating_sub(s.last_used_at_ms).max(1);
        let sid = s.id.to_b64();
        let key = self.session_key(s.user_id, s.id);
        let amr = s.amr.join(" ");
        let evicted: Vec<String> = self
            .eval(
                "create_session",
                &self.scripts.create,
                &key,
                &mut self.conn.clone(),
                |inv| {
                    inv.key(self.index_key(s.user_id))
                        .arg(s.last_used_at_ms)
                        .arg(ttl)
                        .arg(end)
                        .arg(&sid)
                        .arg(max_sessions)
                        .arg(self.session_prefix(s.user_id))
                        .arg("c")
                        .arg(s.created_at_ms)
                        .arg("u")
                        .arg(s.last_used_at_ms)
                        .arg("e")
                        .arg(s.expires_at_ms)
                        .arg("m")
                        .arg(s.max_expires_at_ms)
                        .arg("h")
                        .arg(&s.refresh_hash[..])
                        .arg("g")
                        .arg(s.generation)
                        .arg("r")
                        .arg(s.rotated_at_ms)
                        .arg("a")
                        .arg(&amr)
                        .arg("t")
                        .arg(s.auth_time_ms);
                    if let Some(ip) = &s.ip {
                        inv.arg("ip").arg(ip);
                    }
                    if let Some(ua) = &s.user_agent {
                        inv.arg("ua").arg(ua);
                    }
                },
            )
            .await?;
        evicted
            .iter()
            .map(|s| SessionId::from_b64(s).ok_or_else(|| corrupt("session id is malformed")))
            .collect()
    }

    async fn get_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .read_session(user_id, session_id)
            .await?
            .filter(|s| s.is_live(now_ms)))
    }

    async fn list_sessions(&self, user_id: UserId, now_ms: u64) -> StoreResult<Vec<SessionRecord>> {
        let v: Value = self
            .eval(
                "list_sessions",
                &self.scripts.list,
                &self.index_key(user_id),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(self.session_prefix(user_id)).arg(now_ms);
                },
            )
            .await?;
        let Value::Array(items) = v else {
            return Err(corrupt("session listing is not an array"));
        };
        let mut out = Vec::new();
        let mut it = items.into_iter();
        while let (Some(id), Some(f)) = (it.next(), it.next()) {
            let Value::BulkString(id) = id else {
                return Err(corrupt("session id is not a string"));
            };
            let sid = std::str::from_utf8(&id)
                .ok()
                .and_then(SessionId::from_b64)
                .ok_or_else(|| corrupt("session id is malformed"))?;
            let s = session_from(user_id, sid, &fields(f)?)?;
            if s.is_live(now_ms) {
                out.push(s);
            }
        }
        out.sort_by_key(|s| (s.created_at_ms, s.id));
        Ok(out)
    }

    async fn delete_session(&self, user_id: UserId, session_id: SessionId) -> StoreResult<bool> {
        let n: i64 = self
            .eval(
                "delete_session",
                &self.scripts.delete,
                &self.session_key(user_id, session_id),
                &mut self.conn.clone(),
                |inv| {
                    inv.key(self.index_key(user_id)).arg(session_id.to_b64());
                },
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_all_sessions(&self, user_id: UserId) -> StoreResult<Vec<SessionId>> {
        let ids: Vec<String> = self
            .eval(
                "delete_all_sessions",
                &self.scripts.delete_all,
                &self.index_key(user_id),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(self.session_prefix(user_id));
                },
            )
            .await?;
        ids.iter()
            .map(|s| SessionId::from_b64(s).ok_or_else(|| corrupt("session id is malformed")))
            .collect()
    }

    async fn rotate_refresh(&self, r: &RotateRequest) -> StoreResult<RotateOutcome> {
        let key = self.session_key(r.user_id, r.session_id);
        let mut conn = if self.acked.is_empty() {
            self.conn.clone()
        } else {
            let i = self.next_acked.fetch_add(1, Ordering::Relaxed) % self.acked.len();
            self.acked[i].clone()
        };
        let v: Value = self
            .eval("rotate", &self.scripts.rotate, &key, &mut conn, |inv| {
                inv.key(self.index_key(r.user_id))
                    .arg(r.now_ms)
                    .arg(&r.expected_hash[..])
                    .arg(r.expected_generation)
                    .arg(&r.new_hash[..])
                    .arg(r.expected_generation.saturating_add(1))
                    .arg(r.new_expires_at_ms)
                    .arg(r.session_id.to_b64());
            })
            .await?;
        let Value::Array(items) = v else {
            return Err(corrupt("rotation reply is not an array"));
        };
        let mut it = items.into_iter();
        let code = it.next().map(|v| int(&v)).transpose()?;
        match code {
            Some(0) => Ok(RotateOutcome::Invalid),
            Some(1) => Ok(RotateOutcome::Conflict),
            Some(2) => {
                let f = fields(
                    it.next()
                        .ok_or_else(|| corrupt("rotation reply lacks the session"))?,
                )?;
                let s = session_from(r.user_id, r.session_id, &f)?;
                if !self.acked.is_empty() {
                    self.wait_for_replicas(&mut conn, &key).await;
                }
                Ok(RotateOutcome::Rotated(s))
            }
            _ => Err(corrupt("rotation reply has an unknown code")),
        }
    }

    async fn refresh_chain_key(&self, candidate: [u8; 32]) -> StoreResult<[u8; 32]> {
        let v: Vec<u8> = self
            .eval(
                "refresh_chain_key",
                &self.scripts.get_or_set,
                &format!("{}:refresh-chain", self.cfg.key_prefix),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(&candidate[..]);
                },
            )
            .await?;
        v.as_slice()
            .try_into()
            .map_err(|_| corrupt("refresh-chain secret is not 32 bytes"))
    }

    async fn lockout_status(&self, key: &str, now_ms: u64) -> StoreResult<LockoutStatus> {
        let v: Vec<Option<u64>> = self
            .query(
                "lockout_status",
                redis::cmd("HMGET")
                    .arg(self.lockout_key(key))
                    .arg("f")
                    .arg("ws")
                    .arg("lu")
                    .arg("w"),
            )
            .await?;
        let get = |i: usize| v.get(i).copied().flatten().unwrap_or(0);
        let (f, ws, lu, w) = (get(0), get(1), get(2), get(3));
        Ok(LockoutStatus {
            failures: if now_ms.saturating_sub(ws) < w {
                u32::try_from(f).unwrap_or(u32::MAX)
            } else {
                0
            },
            locked_until_ms: (lu > now_ms).then_some(lu),
        })
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now_ms: u64,
        p: &LockoutPolicy,
    ) -> StoreResult<LockoutStatus> {
        let (counted, locked_until): (u64, u64) = self
            .eval(
                "record_login_failure",
                &self.scripts.failure,
                &self.lockout_key(key),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(now_ms)
                        .arg(p.window_ms)
                        .arg(p.max_failures)
                        .arg(p.base_lock_ms)
                        .arg(p.max_lock_ms);
                },
            )
            .await?;
        Ok(LockoutStatus {
            failures: u32::try_from(counted).unwrap_or(u32::MAX),
            locked_until_ms: (locked_until > now_ms).then_some(locked_until),
        })
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        let _: i64 = self
            .query(
                "clear_login_failures",
                redis::cmd("DEL").arg(self.lockout_key(key)),
            )
            .await?;
        Ok(())
    }

    async fn rate_limit(
        &self,
        key: &str,
        now_ms: u64,
        limit: &RateLimit,
    ) -> StoreResult<Option<u64>> {
        let emission = limit.emission_interval_ms();
        let tolerance = emission * f64::from(limit.burst.saturating_sub(1));
        let wait: u64 = self
            .eval(
                "rate_limit",
                &self.scripts.rate,
                &format!("{}:rl:{key}", self.cfg.key_prefix),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(now_ms)
                        .arg(format!("{emission:.3}"))
                        .arg(format!("{tolerance:.3}"));
                },
            )
            .await?;
        Ok((wait > 0).then_some(wait))
    }

    async fn load_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let v: Value = self
            .query(
                "load_signing_keys",
                redis::cmd("HGETALL").arg(self.signing_keys_key()),
            )
            .await?;
        fields(v)?.values().map(|b| codec::decode_key(b)).collect()
    }

    async fn save_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let _: i64 = self
            .query(
                "save_signing_key",
                redis::cmd("HSET")
                    .arg(self.signing_keys_key())
                    .arg(&key.kid)
                    .arg(codec::encode_key(key)),
            )
            .await?;
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        let _: i64 = self
            .query(
                "delete_signing_key",
                redis::cmd("HDEL").arg(self.signing_keys_key()).arg(kid),
            )
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, _now_ms: u64) -> StoreResult<u64> {
        // Sessions, indexes, lockout and limiter entries carry TTLs: Redis
        // removes them itself.
        Ok(0)
    }

    /// Sums `DBSIZE` over the masters and scales it by the share of session
    /// keys among [`SESSION_SAMPLES`] `RANDOMKEY`s: a statistical estimate
    /// (about ±10 % at a session share of one half), at a cost of a few dozen
    /// commands per call.
    async fn session_count_estimate(&self) -> StoreResult<Option<u64>> {
        let mut conn = self.conn.clone();
        let total: u64 = self
            .timed("dbsize", redis::cmd("DBSIZE").query_async(&mut conn))
            .await?;
        if total == 0 {
            return Ok(Some(0));
        }
        let prefix = format!("{}:{{", self.cfg.key_prefix);
        let (mut seen, mut sessions) = (0u64, 0u64);
        for _ in 0..SESSION_SAMPLES {
            let v: Value = self
                .timed(
                    "randomkey",
                    conn.route_command(
                        redis::cmd("RANDOMKEY"),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                    ),
                )
                .await?;
            if let Value::BulkString(key) = v {
                seen += 1;
                if is_session_key(&key, prefix.as_bytes()) {
                    sessions += 1;
                }
            }
        }
        Ok(Some(
            total
                .saturating_mul(sessions)
                .checked_div(seen)
                .unwrap_or(0),
        ))
    }

    async fn ping(&self) -> StoreResult<()> {
        let v: Value = {
            let mut conn = self.conn.clone();
            self.timed(
                "ping",
                conn.route_command(
                    redis::cmd("PING"),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                ),
            )
            .await?
        };
        match v {
            Value::SimpleString(_) | Value::BulkString(_) | Value::Okay => Ok(()),
            other => Err(StoreError::Unavailable(format!(
                "redis cluster answered PING with {other:?}"
            ))),
        }
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every acknowledged write is already on a master; persistence and
        // replication are the cluster's configuration.
        Ok(())
    }
}
