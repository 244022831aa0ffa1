//! Configuration: every setting has a flag and a `PORTCULLIS_*` variable,
//! named once in [`SETTINGS`] beside its default. A flag wins over the
//! variable, the variable over the default. Values come through a [`Source`],
//! so tests fill settings from a map and never touch the process environment.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use portcullis_engine::EngineConfig;
use portcullis_engine::config::scylla::config as scylla_cfg;
use portcullis_engine::config::{
    LockoutPolicy, RedisClusterConfig, ScyllaConfig, ScyllaTls, TokenStoreConfig, UserStoreConfig,
};
use portcullis_engine::hashpool::HashScheme;

use crate::clientip::TrustedProxies;
use crate::ratelimit::RateSpec;
use crate::server::ServerConfig;

/// One setting: its flag, its variable, its default and what it does.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Long flag name (without `--`).
    pub flag: &'static str,
    /// Environment variable.
    pub env: &'static str,
    /// Default value, as text.
    pub default: &'static str,
    /// Placeholder in `--help`.
    pub value_name: &'static str,
    /// What it does.
    pub help: &'static str,
}

macro_rules! settings {
    ($( $id:ident: $flag:literal, $env:literal, $default:literal, $value:literal, $help:literal; )*) => {
        $( #[doc = $help] pub const $id: Setting = Setting { flag: $flag, env: $env, default: $default, value_name: $value, help: $help }; )*
        /// Every setting, in `--help` order.
        pub const SETTINGS: &[Setting] = &[$($id),*];
    };
}

settings! {
    DATA_DIR: "data-dir", "PORTCULLIS_DATA_DIR", "./data", "DIR", "Data directory of the embedded store and signing keys";
    LISTEN: "listen", "PORTCULLIS_LISTEN", "0.0.0.0:8080", "ADDR", "API listen address";
    ADMIN_LISTEN: "admin-listen", "PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:9090", "ADDR", "Admin listen address (/metrics, /healthz, /readyz)";
    USER_STORE: "user-store", "PORTCULLIS_USER_STORE", "embedded", "STORE", "Where users live: embedded or scylla";
    SCYLLA_NODES: "scylla-nodes", "PORTCULLIS_SCYLLA_NODES", "", "HOSTS", "ScyllaDB contact points, comma-separated host:port (h1:9042,h2:9042)";
    SCYLLA_KEYSPACE: "scylla-keyspace", "PORTCULLIS_SCYLLA_KEYSPACE", "portcullis", "NAME", "ScyllaDB keyspace of Portcullis' tables";
    SCYLLA_LOCAL_DC: "scylla-local-dc", "PORTCULLIS_SCYLLA_LOCAL_DC", "", "DC", "ScyllaDB datacenter of this pod: requests stay in it and LOCAL_* consistencies count its replicas";
    SCYLLA_USERNAME: "scylla-username", "PORTCULLIS_SCYLLA_USERNAME", "", "USER", "ScyllaDB username (password authentication)";
    SCYLLA_PASSWORD: "scylla-password", "PORTCULLIS_SCYLLA_PASSWORD", "", "PASSWORD", "ScyllaDB password (prefer the variable, from a Secret)";
    SCYLLA_TLS_CA: "scylla-tls-ca", "PORTCULLIS_SCYLLA_TLS_CA", "", "FILE", "PEM CA certificates of the ScyllaDB nodes; setting it turns TLS on";
    SCYLLA_TLS_SERVER_NAME: "scylla-tls-server-name", "PORTCULLIS_SCYLLA_TLS_SERVER_NAME", "", "NAME", "DNS name the nodes' certificates carry (else they must carry the node IPs)";
    SCYLLA_TLS_CERT: "scylla-tls-cert", "PORTCULLIS_SCYLLA_TLS_CERT", "", "FILE", "PEM client certificate chain for mutual TLS";
    SCYLLA_TLS_KEY: "scylla-tls-key", "PORTCULLIS_SCYLLA_TLS_KEY", "", "FILE", "PEM client private key for mutual TLS";
    SCYLLA_CONSISTENCY: "scylla-consistency", "PORTCULLIS_SCYLLA_CONSISTENCY", "local_quorum", "LEVEL", "Consistency of ScyllaDB reads and writes";
    SCYLLA_SERIAL_CONSISTENCY: "scylla-serial-consistency", "PORTCULLIS_SCYLLA_SERIAL_CONSISTENCY", "local_serial", "LEVEL", "Serial consistency of lightweight transactions (email uniqueness, versioned updates)";
    SCYLLA_REQUEST_TIMEOUT: "scylla-request-timeout", "PORTCULLIS_SCYLLA_REQUEST_TIMEOUT", "2s", "DURATION", "Longest wait for one ScyllaDB request, retries included (the request answers 503 after it)";
    SCYLLA_SPECULATIVE_DELAY: "scylla-speculative-delay", "PORTCULLIS_SCYLLA_SPECULATIVE_DELAY", "100ms", "DURATION", "After this, an idempotent read is also sent to a second replica; off turns it off";
    SCYLLA_REPLICATION: "scylla-replication", "PORTCULLIS_SCYLLA_REPLICATION", "", "DC:RF,...", "Replication of the keyspace migrate creates (NetworkTopologyStrategy; default: <local dc>:3)";
    SCYLLA_TABLETS: "scylla-tablets", "PORTCULLIS_SCYLLA_TABLETS", "off", "MODE", "Tablets of the keyspace migrate creates: off (LWT works on every ScyllaDB), on, or default (no clause; Cassandra, ScyllaDB < 6)";
    TOKEN_STORE: "token-store", "PORTCULLIS_TOKEN_STORE", "embedded", "STORE", "Where sessions, refresh tokens, lockout and rate-limit counters live: embedded or redis-cluster";
    REDIS_NODES: "redis-nodes", "PORTCULLIS_REDIS_NODES", "", "URLS", "Redis Cluster seed nodes, comma-separated (redis://h1:6379,redis://:password@h2:6379)";
    REDIS_KEY_PREFIX: "redis-key-prefix", "PORTCULLIS_REDIS_KEY_PREFIX", "portcullis", "PREFIX", "Prefix of every Redis key (one per deployment sharing a cluster)";
    REDIS_CONNECT_TIMEOUT: "redis-connect-timeout", "PORTCULLIS_REDIS_CONNECT_TIMEOUT", "1s", "DURATION", "Longest wait for a connection to a Redis node";
    REDIS_COMMAND_TIMEOUT: "redis-command-timeout", "PORTCULLIS_REDIS_COMMAND_TIMEOUT", "1s", "DURATION", "Longest wait for one Redis answer (the request answers 503 after it)";
    REDIS_WAIT_REPLICAS: "redis-wait-replicas", "PORTCULLIS_REDIS_WAIT_REPLICAS", "0", "N", "Replicas that must acknowledge each refresh-token rotation (WAIT); 0 turns it off";
    REDIS_WAIT_TIMEOUT: "redis-wait-timeout", "PORTCULLIS_REDIS_WAIT_TIMEOUT", "50ms", "DURATION", "Longest WAIT for replica acknowledgement of a rotation";
    STORE_CONNECT_TIMEOUT: "store-connect-timeout", "PORTCULLIS_STORE_CONNECT_TIMEOUT", "5s", "DURATION", "At start-up, how long to wait for a shared store (ScyllaDB, Redis Cluster) before serving without it: not ready, connecting it in the background";
    ISSUER: "issuer", "PORTCULLIS_ISSUER", "http://localhost:8080", "URL", "JWT issuer (iss) and public base URL";
    DATA_KEY: "data-key", "PORTCULLIS_DATA_KEY", "", "KEYS", "AES-256 keys (base64, comma-separated, the first seals) for TOTP secrets and queued mail; required with --user-store scylla, generated in the data directory otherwise (prefer the variable, from a Secret)";
    PUBLIC_BASE_URL: "public-base-url", "PORTCULLIS_PUBLIC_BASE_URL", "", "URL", "Base of the links mailed to users (<base>/<page>?token=...); default: the issuer";
    MAIL_FROM: "mail-from", "PORTCULLIS_MAIL_FROM", "Portcullis <no-reply@localhost>", "MAILBOX", "From: of every message";
    MAIL_TRANSPORT: "mail-transport", "PORTCULLIS_MAIL_TRANSPORT", "file", "TRANSPORT", "How mail leaves: file (RFC 5322 .eml files in --mail-dir) or smtp";
    MAIL_DIR: "mail-dir", "PORTCULLIS_MAIL_DIR", "", "DIR", "Directory of the file transport (default: <data dir>/mail)";
    SMTP_HOST: "smtp-host", "PORTCULLIS_SMTP_HOST", "", "HOST", "SMTP server (its certificate must name it)";
    SMTP_PORT: "smtp-port", "PORTCULLIS_SMTP_PORT", "0", "PORT", "SMTP port (0: 587 for starttls, 465 for tls, 25 for none)";
    SMTP_SECURITY: "smtp-security", "PORTCULLIS_SMTP_SECURITY", "starttls", "MODE", "starttls (required), tls (implicit), or none (a local relay only)";
    SMTP_USERNAME: "smtp-username", "PORTCULLIS_SMTP_USERNAME", "", "USER", "SMTP AUTH user name";
    SMTP_PASSWORD: "smtp-password", "PORTCULLIS_SMTP_PASSWORD", "", "PASSWORD", "SMTP AUTH password (prefer the variable, from a Secret)";
    SMTP_CA_FILE: "smtp-ca-file", "PORTCULLIS_SMTP_CA_FILE", "", "FILE", "Extra CA certificate (PEM) to trust for the SMTP server";
    SMTP_TIMEOUT: "smtp-timeout", "PORTCULLIS_SMTP_TIMEOUT", "10s", "DURATION", "Longest wait for the SMTP server at each step";
    AUDIENCE: "audience", "PORTCULLIS_AUDIENCE", "portcullis", "AUD", "JWT audience (aud)";
    REFRESH_REUSE_GRACE_MS: "refresh-reuse-grace-ms", "PORTCULLIS_REFRESH_REUSE_GRACE_MS", "2000", "MS", "A rotated refresh token presented within this window is refused without revoking the session";
    TRUSTED_PROXIES: "trusted-proxies", "PORTCULLIS_TRUSTED_PROXIES", "", "CIDRS", "Comma-separated proxy CIDRs whose forwarding header (see --forwarded-header) is believed";
    FORWARDED_HEADER: "forwarded-header", "PORTCULLIS_FORWARDED_HEADER", "x-forwarded-for", "HEADER", "The header the trusted proxies write (and overwrite): x-forwarded-for or forwarded (RFC 7239); the other is ignored";
    IP_RATE_LIMIT: "ip-rate-limit", "PORTCULLIS_IP_RATE_LIMIT", "10/s,burst=20", "RATE", "Per-IP limit on every route that costs a hash, sends mail or takes a secret: register, login (both steps), refresh, password forgot/reset/change, email change and verification, MFA (e.g. 10/s,burst=20, 600/min, off)";
    INTROSPECTION_RATE_LIMIT: "introspection-rate-limit", "PORTCULLIS_INTROSPECTION_RATE_LIMIT", "100/s,burst=200", "RATE", "Per-IP limit on introspection and revocation, and the same per account of the token (resource servers call them; off turns both off)";
    ACCOUNT_RATE_LIMIT: "account-rate-limit", "PORTCULLIS_ACCOUNT_RATE_LIMIT", "20/h,burst=10", "RATE", "Per-account limit, across pods, on password and email change and MFA enroll/confirm/disable (off turns it off)";
    MAIL_LIMIT: "mail-limit", "PORTCULLIS_MAIL_LIMIT", "1/min,10/d", "RATES", "Mail each flow (verification, email change, password reset) may send per account and per recipient address; every rate must admit (429 too_many_requests)";
    OUTBOX_MAX: "outbox-max", "PORTCULLIS_OUTBOX_MAX", "100000", "N", "Messages the outbox may hold; beyond, flows that send mail answer 503 until the mailer catches up";
    MAX_SESSIONS_PER_USER: "max-sessions-per-user", "PORTCULLIS_MAX_SESSIONS_PER_USER", "100", "N", "Live sessions per user; a new one past it ends the least recently used (0: no limit)";
    DEVICE_TOKEN_TTL: "device-token-ttl", "PORTCULLIS_DEVICE_TOKEN_TTL", "90d", "DURATION", "Lifetime of the device token a password login returns";
    ACCOUNT_LOCKOUT_THRESHOLD: "account-lockout-threshold", "PORTCULLIS_ACCOUNT_LOCKOUT_THRESHOLD", "50", "N", "Failed logins of one account from clients without a valid device token, from any address, within the lockout window, that lock the account for such clients only";
    MFA_LOCKOUT_THRESHOLD: "mfa-lockout-threshold", "PORTCULLIS_MFA_LOCKOUT_THRESHOLD", "5", "N", "Wrong second-factor codes of one account within the lockout window that kill the pending mfa_token and lock the second step (with backoff)";
    DATA_KEY_RESEAL_INTERVAL: "data-key-reseal-interval", "PORTCULLIS_DATA_KEY_RESEAL_INTERVAL", "1h", "DURATION", "How often secrets still sealed under an older data key are re-sealed under the first one (while several keys are configured)";
    PASSWORD_HASH: "password-hash", "PORTCULLIS_PASSWORD_HASH", "argon2id:m=19456,t=2,p=1", "SCHEME", "Scheme for new password hashes (argon2id:m=..,t=..,p=.. or pbkdf2-sha256:i=..)";
    HASH_THREADS: "hash-threads", "PORTCULLIS_HASH_THREADS", "0", "N", "Password hash threads (0: one per core)";
    HASH_QUEUE: "hash-queue", "PORTCULLIS_HASH_QUEUE", "0", "N", "Hash jobs that may wait before logins get 503 overloaded at once (0: 4 per thread, so a login waits at most four hashes)";
    HASH_NICE: "hash-nice", "PORTCULLIS_HASH_NICE", "10", "N", "How many steps below the process's CPU priority the hash threads run (0..19; 0: the same), so request handling goes first when they compete";
    SHARDS: "shards", "PORTCULLIS_SHARDS", "0", "N", "Shard actors (0: four per core)";
    SHARD_CAPACITY: "shard-capacity", "PORTCULLIS_SHARD_CAPACITY", "4096", "N", "Operations admitted per shard before 503 overloaded";
    ACCESS_TOKEN_TTL: "access-token-ttl", "PORTCULLIS_ACCESS_TOKEN_TTL", "15m", "DURATION", "Access-token lifetime";
    REFRESH_TOKEN_TTL: "refresh-token-ttl", "PORTCULLIS_REFRESH_TOKEN_TTL", "30d", "DURATION", "Refresh-token lifetime, extended by every rotation";
    SESSION_MAX_AGE: "session-max-age", "PORTCULLIS_SESSION_MAX_AGE", "90d", "DURATION", "Absolute session lifetime";
    KEY_ROTATION_INTERVAL: "key-rotation-interval", "PORTCULLIS_KEY_ROTATION_INTERVAL", "30d", "DURATION", "How long a signing key signs before its (already published) successor takes over";
    SIGNING_KEYS_DIR: "signing-keys-dir", "PORTCULLIS_SIGNING_KEYS_DIR", "", "DIR", "Operator-managed signing keys (e.g. a mounted Secret): signing.pem signs, other *.pem are published; reread every 30s, never rotated by Portcullis";
    LOCKOUT_THRESHOLD: "lockout-threshold", "PORTCULLIS_LOCKOUT_THRESHOLD", "5", "N", "Failed logins of one account from one client address (or one device token) within the window that lock that address (or device) out of that account";
    LOCKOUT_WINDOW: "lockout-window", "PORTCULLIS_LOCKOUT_WINDOW", "15m", "DURATION", "Window in which failed logins and codes are counted";
    LOCKOUT_DURATION: "lockout-duration", "PORTCULLIS_LOCKOUT_DURATION", "1m", "DURATION", "First lock; each further lock doubles it";
    LOCKOUT_MAX_DURATION: "lockout-max-duration", "PORTCULLIS_LOCKOUT_MAX_DURATION", "1h", "DURATION", "Longest lock";
    MAX_CONNECTIONS: "max-connections", "PORTCULLIS_MAX_CONNECTIONS", "10000", "N", "Open API connections at most";
    MAX_CONNECTIONS_PER_IP: "max-connections-per-ip", "PORTCULLIS_MAX_CONNECTIONS_PER_IP", "256", "N", "Open API connections per TCP peer address (IPv6: per /64) at most, 0 for no limit (behind a load balancer, whose address every client shares: raise it or use 0)";
    KEEPALIVE_TIMEOUT: "keepalive-timeout", "PORTCULLIS_KEEPALIVE_TIMEOUT", "75s", "DURATION", "Idle keep-alive connections are closed after this (keep it above the load balancer's)";
    REQUEST_TIMEOUT: "request-timeout", "PORTCULLIS_REQUEST_TIMEOUT", "15s", "DURATION", "A started request must arrive completely within this";
    ENGINE_TIMEOUT: "engine-timeout", "PORTCULLIS_ENGINE_TIMEOUT", "30s", "DURATION", "Longest time one operation may hold its partition in the engine before it is abandoned (503)";
    WORKERS: "workers", "PORTCULLIS_WORKERS", "0", "N", "HTTP coroutine worker threads (0: one per core)";
    RUNTIME_THREADS: "runtime-threads", "PORTCULLIS_RUNTIME_THREADS", "0", "N", "Engine runtime threads (0: one per core)";
    SHUTDOWN_DRAIN: "shutdown-drain", "PORTCULLIS_SHUTDOWN_DRAIN", "10s", "DURATION", "On SIGTERM, how long in-flight requests may take to finish";
    LOG: "log", "PORTCULLIS_LOG", "info,fjall=warn,lsm_tree=warn,may=warn,scylla=warn", "FILTER", "Log filter (tracing EnvFilter syntax)";
    LOG_FORMAT: "log-format", "PORTCULLIS_LOG_FORMAT", "json", "FORMAT", "Log format: json (one object per line) or text";
}

/// Where setting values come from besides flags.
pub trait Source {
    /// The value of variable `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// Settings of the edge itself.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// API listen address.
    pub listen: SocketAddr,
    /// Admin listen address.
    pub admin_listen: SocketAddr,
    /// Issuer (for the discovery document).
    pub issuer: String,
    /// Trusted proxies.
    pub trusted_proxies: TrustedProxies,
    /// The header they write.
    pub forwarded_header: crate::clientip::ForwardedHeader,
    /// Per-IP rate limit.
    pub ip_rate_limit: RateSpec,
    /// Per-IP limit on introspection and revocation.
    pub introspection_rate_limit: RateSpec,
    /// API connection limits and timeouts.
    pub server: ServerConfig,
    /// may worker threads (0: cores).
    pub workers: usize,
    /// tokio worker threads (0: cores).
    pub runtime_threads: usize,
    /// Drain time at shutdown.
    pub shutdown_drain: Duration,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
}

/// Everything `portcullis serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The edge.
    pub edge: EdgeConfig,
    /// The engine.
    pub engine: EngineConfig,
}

/// A setting that could not be read; the message names the flag, the
/// variable and the value, on one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Flag values given on the command line, by flag name.
pub type Flags = HashMap<&'static str, String>;

struct Resolver<'a> {
    flags: &'a Flags,
    source: &'a dyn Source,
}

impl Resolver<'_> {
    fn raw(&self, s: &Setting) -> String {
        self.flags
            .get(s.flag)
            .cloned()
            .or_else(|| self.source.get(s.env))
            .unwrap_or_else(|| s.default.to_owned())
    }

    fn parse<T>(
        &self,
        s: &Setting,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let raw = self.raw(s);
        f(raw.trim()).map_err(|why| {
            ConfigError(format!(
                "invalid --{} / {} value '{}': {}",
                s.flag, s.env, raw, why
            ))
        })
    }

    fn num(&self, s: &Setting) -> Result<usize, ConfigError> {
        self.parse(s, |v| {
            v.parse::<usize>()
                .map_err(|_| "expected a whole number".to_owned())
        })
    }

    fn duration(&self, s: &Setting) -> Result<Duration, ConfigError> {
        self.parse(s, parse_duration)
    }
}

/// Parses a list of rates like `1/min,10/d` (each `<count>/<unit>`, the
/// burst equal to the count), or `off` for none.
pub fn parse_rates(v: &str) -> Result<Vec<portcullis_engine::config::RateLimit>, String> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (count, unit) = part
            .split_once('/')
            .ok_or_else(|| format!("'{part}' is not a rate like 1/min or 10/d"))?;
        let count: u32 = count
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("'{part}': the count must be a positive whole number"))?;
        let period_ms = match unit.trim() {
            "s" => 1000,
            "min" | "m" => 60_000,
            "h" => 3_600_000,
            "d" | "day" => 86_400_000,
            u => return Err(format!("'{part}': unknown unit '{u}' (use s, min, h or d)")),
        };
        out.push(portcullis_engine::config::RateLimit {
            count,
            period_ms,
            burst: count,
        });
    }
    if out.is_empty() {
        return Err("expected rates like 1/min,10/d, or off".to_owned());
    }
    Ok(out)
}

/// Parses `90s`, `15m`, `1h`, `30d`, `250ms` (a bare number means seconds).
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| "expected a duration like 90s, 15m, 1h or 30d".to_owned())?;
    let ms = match unit {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("unknown unit '{unit}' (use ms, s, m, h or d)")),
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| "duration is too long".to_owned())
}

fn parse_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "expected host:port with an IP address, like 0.0.0.0:8080".to_owned())
}

fn parse_issuer(v: &str) -> Result<String, String> {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
        .ok_or("expected an http:// or https:// URL")?;
    if rest.is_empty()
        || rest.starts_with('/')
        || v.ends_with('/')
        || v.contains(char::is_whitespace)
    {
        return Err(
            "expected a URL with a host and no trailing slash, like https://auth.example.com"
                .into(),
        );
    }
    Ok(v.to_owned())
}

impl Config {
    /// Resolves every setting from `flags`, then `source`, then the defaults.
    pub fn resolve(flags: &Flags, source: &dyn Source) -> Result<Config, ConfigError> {
        let r = Resolver { flags, source };
        let issuer = r.parse(&ISSUER, parse_issuer)?;
        let mut engine = EngineConfig::new(PathBuf::from(r.raw(&DATA_DIR)));
        engine.issuer = issuer.clone();
        engine.audience = r.parse(&AUDIENCE, |v| {
            if v.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(v.to_owned())
            }
        })?;
        engine.refresh_reuse_grace =
            Duration::from_millis(r.parse(&REFRESH_REUSE_GRACE_MS, |v| {
                v.parse::<u64>()
                    .map_err(|_| "expected milliseconds".to_owned())
            })?);
        engine.password_hash = r.parse(&PASSWORD_HASH, |v| {
            v.parse::<HashScheme>().map_err(|e| e.to_string())
        })?;
        engine.hash_threads = r.num(&HASH_THREADS)?;
        engine.hash_queue = r.num(&HASH_QUEUE)?;
        engine.hash_nice = r.parse(&HASH_NICE, |v| match v.parse::<i32>() {
            Ok(n) if (0..=19).contains(&n) => Ok(n),
            _ => Err("expected a whole number from 0 to 19".to_owned()),
        })?;
        engine.shards = r.num(&SHARDS)?;
        engine.shard_capacity = r.parse(&SHARD_CAPACITY, |v| match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a positive whole number".to_owned()),
        })?;
        engine.operation_timeout = r.duration(&ENGINE_TIMEOUT)?;
        engine.access_ttl = r.duration(&ACCESS_TOKEN_TTL)?;
        engine.refresh_ttl = r.duration(&REFRESH_TOKEN_TTL)?;
        engine.session_max_age = r.duration(&SESSION_MAX_AGE)?;
        engine.key_rotation_interval = r.duration(&KEY_ROTATION_INTERVAL)?;
        engine.signing_keys_dir = Some(r.raw(&SIGNING_KEYS_DIR))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if engine.access_ttl < Duration::from_secs(10)
            || engine.access_ttl > Duration::from_secs(86_400)
        {
            return Err(ConfigError(format!(
                "invalid --{} / {}: must be between 10s and 1d",
                ACCESS_TOKEN_TTL.flag, ACCESS_TOKEN_TTL.env
            )));
        }
        if engine.key_rotation_interval <= engine.access_ttl {
            return Err(ConfigError(format!(
                "invalid --{} / {}: must be longer than the access-token lifetime",
                KEY_ROTATION_INTERVAL.flag, KEY_ROTATION_INTERVAL.env
            )));
        }
        engine.lockout = LockoutPolicy {
            max_failures: r.parse(&LOCKOUT_THRESHOLD, |v| match v.parse::<u32>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err("expected a positive whole number".to_owned()),
            })?,
            window_ms: ms(r.duration(&LOCKOUT_WINDOW)?),
            base_lock_ms: ms(r.duration(&LOCKOUT_DURATION)?),
            max_lock_ms: ms(r.duration(&LOCKOUT_MAX_DURATION)?),
        };
        let positive_u32 = |v: &str| match v.parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a positive whole number".to_owned()),
        };
        engine.account_lockout = LockoutPolicy {
            max_failures: r.parse(&ACCOUNT_LOCKOUT_THRESHOLD, positive_u32)?,
            ..engine.lockout
        };
        engine.mfa_lockout = LockoutPolicy {
            max_failures: r.parse(&MFA_LOCKOUT_THRESHOLD, positive_u32)?,
            ..engine.lockout
        };
        engine.device_token_ttl = r.duration(&DEVICE_TOKEN_TTL)?;
        engine.max_sessions_per_user = r.num(&MAX_SESSIONS_PER_USER)?;
        let account_rate: RateSpec = r.parse(&ACCOUNT_RATE_LIMIT, str::parse)?;
        engine.account_rate_limit = account_rate.shared();
        let introspection_rate_limit: RateSpec = r.parse(&INTROSPECTION_RATE_LIMIT, str::parse)?;
        engine.introspection_rate_limit = introspection_rate_limit.shared();
        engine.store_connect_timeout = r.duration(&STORE_CONNECT_TIMEOUT)?;
        engine.user_store = match r.raw(&USER_STORE).as_str() {
            "embedded" => UserStoreConfig::Embedded,
            "scylla" => UserStoreConfig::Scylla(Box::new(scylla(&r, true)?)),
            other => {
                return Err(ConfigError(format!(
                    "invalid --{} / {}: '{other}' (expected embedded or scylla)",
                    USER_STORE.flag, USER_STORE.env
                )));
            }
        };
        engine.token_store = match r.raw(&TOKEN_STORE).as_str() {
            "embedded" => TokenStoreConfig::Embedded,
            "redis-cluster" => {
                let nodes: Vec<String> = r
                    .raw(&REDIS_NODES)
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
                if nodes.is_empty() {
                    return Err(ConfigError(format!(
                        "--{} redis-cluster needs --{} / {} (e.g. redis://h1:6379,redis://h2:6379)",
                        TOKEN_STORE.flag, REDIS_NODES.flag, REDIS_NODES.env
                    )));
                }
                if let Some(bad) = nodes
                    .iter()
                    .find(|n| !(n.starts_with("redis://") || n.starts_with("rediss://")))
                {
                    return Err(ConfigError(format!(
                        "invalid --{} / {}: '{}' is not a redis:// URL",
                        REDIS_NODES.flag,
                        REDIS_NODES.env,
                        redact_url(bad)
                    )));
                }
                let mut rc = RedisClusterConfig::new(nodes);
                rc.key_prefix = r.raw(&REDIS_KEY_PREFIX);
                rc.connect_timeout = r.duration(&REDIS_CONNECT_TIMEOUT)?;
                rc.command_timeout = r.duration(&REDIS_COMMAND_TIMEOUT)?;
                rc.wait_replicas = u32::try_from(r.num(&REDIS_WAIT_REPLICAS)?).unwrap_or(u32::MAX);
                rc.wait_timeout = r.duration(&REDIS_WAIT_TIMEOUT)?;
                rc.validate().map_err(|e| {
                    ConfigError(format!("invalid --{}: {e}", REDIS_KEY_PREFIX.flag))
                })?;
                TokenStoreConfig::RedisCluster(rc)
            }
            other => {
                return Err(ConfigError(format!(
                    "invalid --{} / {}: '{other}' (expected embedded or redis-cluster)",
                    TOKEN_STORE.flag, TOKEN_STORE.env
                )));
            }
        };
        engine.account = mail::account(&r)?;
        engine.account.mail_limits = r.parse(&MAIL_LIMIT, parse_rates)?;
        engine.account.outbox_max = r.num(&OUTBOX_MAX)? as u64;
        engine.account.reseal_interval = r.parse(&DATA_KEY_RESEAL_INTERVAL, |v| {
            parse_duration(v).and_then(|d| {
                if d >= Duration::from_secs(1) {
                    Ok(d)
                } else {
                    Err("must be at least 1s".to_owned())
                }
            })
        })?;
        let ip_rate_limit: RateSpec = r.parse(&IP_RATE_LIMIT, str::parse)?;
        engine.shared_rate_limit = ip_rate_limit.shared();
        let edge = EdgeConfig {
            listen: r.parse(&LISTEN, parse_addr)?,
            admin_listen: r.parse(&ADMIN_LISTEN, parse_addr)?,
            issuer,
            trusted_proxies: r.parse(&TRUSTED_PROXIES, str::parse)?,
            forwarded_header: r.parse(&FORWARDED_HEADER, str::parse)?,
            ip_rate_limit,
            introspection_rate_limit,
            server: ServerConfig {
                max_connections: r.num(&MAX_CONNECTIONS)?.max(1),
                max_connections_per_ip: r.num(&MAX_CONNECTIONS_PER_IP)?,
                keepalive_timeout: r.duration(&KEEPALIVE_TIMEOUT)?,
                request_timeout: r.duration(&REQUEST_TIMEOUT)?,
                ..ServerConfig::default()
            },
            workers: r.num(&WORKERS)?,
            runtime_threads: r.num(&RUNTIME_THREADS)?,
            shutdown_drain: r.duration(&SHUTDOWN_DRAIN)?,
            log: r.raw(&LOG),
            log_format: r.parse(&LOG_FORMAT, |v| match v {
                "json" => Ok(LogFormat::Json),
                "text" => Ok(LogFormat::Text),
                _ => Err("expected json or text".to_owned()),
            })?,
        };
        if edge.listen == edge.admin_listen && edge.listen.port() != 0 {
            return Err(ConfigError(format!(
                "--{} and --{} must differ ({})",
                LISTEN.flag, ADMIN_LISTEN.flag, edge.listen
            )));
        }
        Ok(Config { edge, engine })
    }
}

/// The ScyllaDB settings alone (`portcullis migrate` needs nothing else).
/// `need_nodes`: whether contact points are required (not for `--print`).
pub fn resolve_scylla(
    flags: &Flags,
    source: &dyn Source,
    need_nodes: bool,
) -> Result<ScyllaConfig, ConfigError> {
    scylla(&Resolver { flags, source }, need_nodes)
}

fn scylla(r: &Resolver<'_>, need_nodes: bool) -> Result<ScyllaConfig, ConfigError> {
    let nodes: Vec<String> = r
        .raw(&SCYLLA_NODES)
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    if nodes.is_empty() && need_nodes {
        return Err(ConfigError(format!(
            "--{} scylla needs --{} / {} (e.g. h1:9042,h2:9042)",
            USER_STORE.flag, SCYLLA_NODES.flag, SCYLLA_NODES.env
        )));
    }
    let placeholder = || vec!["127.0.0.1:9042".to_owned()];
    let mut c = ScyllaConfig::new(if nodes.is_empty() {
        placeholder()
    } else {
        nodes
    });
    let opt = |s: &Setting| Some(r.raw(s)).filter(|v| !v.trim().is_empty());
    c.keyspace = r.raw(&SCYLLA_KEYSPACE);
    c.local_dc = opt(&SCYLLA_LOCAL_DC);
    c.username = opt(&SCYLLA_USERNAME);
    c.password = opt(&SCYLLA_PASSWORD);
    c.tls = opt(&SCYLLA_TLS_CA).map(|ca| ScyllaTls {
        ca_file: PathBuf::from(ca),
        server_name: opt(&SCYLLA_TLS_SERVER_NAME),
        client_cert: opt(&SCYLLA_TLS_CERT).map(PathBuf::from),
        client_key: opt(&SCYLLA_TLS_KEY).map(PathBuf::from),
    });
    c.consistency = r.parse(&SCYLLA_CONSISTENCY, scylla_cfg::parse_consistency)?;
    c.serial_consistency = r.parse(
        &SCYLLA_SERIAL_CONSISTENCY,
        scylla_cfg::parse_serial_consistency,
    )?;
    c.request_timeout = r.duration(&SCYLLA_REQUEST_TIMEOUT)?;
    c.speculative_delay = r.parse(&SCYLLA_SPECULATIVE_DELAY, |v| match v {
        "off" => Ok(None),
        v => parse_duration(v).map(Some),
    })?;
    c.replication = match opt(&SCYLLA_REPLICATION) {
        Some(_) => r.parse(&SCYLLA_REPLICATION, scylla_cfg::parse_replication)?,
        None => vec![(
            c.local_dc.clone().unwrap_or_else(|| "datacenter1".into()),
            3,
        )],
    };
    c.tablets = r.parse(&SCYLLA_TABLETS, scylla_cfg::parse_tablets)?;
    c.validate()
        .map_err(|e| ConfigError(format!("invalid ScyllaDB settings: {e}")))?;
    Ok(c)
}

/// A node URL for an error message, without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The flag of one setting, with its variable and default in `--help`.
fn setting_arg(s: &Setting) -> clap::Arg {
    let default = if s.default.is_empty() {
        "none"
    } else {
        s.default
    };
    clap::Arg::new(s.flag)
        .long(s.flag)
        .value_name(s.value_name)
        .help(format!(
            "{} [env: {}] [default: {}]",
            s.help, s.env, default
        ))
}

/// The `serve` subcommand's arguments, generated from [`SETTINGS`].
pub fn serve_command() -> clap::Command {
    clap::Command::new("serve")
        .about("Run the server (embedded stores by default)")
        .args(SETTINGS.iter().map(setting_arg))
}

/// The `migrate` subcommand's arguments: the ScyllaDB settings and `--print`.
pub fn migrate_command() -> clap::Command {
    clap::Command::new("migrate")
        .about("Create or upgrade the ScyllaDB schema (idempotent), or print its CQL with --print")
        .arg(
            clap::Arg::new("print")
                .long("print")
                .action(clap::ArgAction::SetTrue)
                .help("Write the CQL to stdout without connecting"),
        )
        .args(
            SETTINGS
                .iter()
                .filter(|s| s.flag.starts_with("scylla-"))
                .map(setting_arg),
        )
}

/// The whole command line.
pub fn cli() -> clap::Command {
    clap::Command::new("portcullis")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Portcullis: a high-throughput authentication engine")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(serve_command())
        .subcommand(migrate_command())
}

/// Flag values of a parsed `serve` or `migrate` invocation.
pub fn flags(matches: &clap::ArgMatches) -> Flags {
    SETTINGS
        .iter()
        .filter_map(|s| {
            // `try_`: a subcommand defines only some of the settings.
            matches
                .try_get_one::<String>(s.flag)
                .ok()
                .flatten()
                .map(|v| (s.flag, v.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests;

mod mail;
