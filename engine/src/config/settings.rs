//! The engine's settings: each a flag, a `PORTCULLIS_*` variable and a
//! default, named once here beside its help. [`EngineConfig`](super::EngineConfig)
//! is resolved from them (a flag wins over the variable, the variable over
//! the default), and its defaults are these defaults: there is no other
//! place a default is written. The edge adds its own settings to the same
//! command line.

use std::collections::HashMap;
use std::time::Duration;

use portcullis_storage::RateLimit;

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

/// Declares settings as constants and the list `$all` of them, in order.
#[macro_export]
macro_rules! settings {
    ($all:ident; $( $id:ident: $flag:literal, $env:literal, $default:literal, $value:literal, $help:literal; )*) => {
        $( #[doc = $help] pub const $id: $crate::config::settings::Setting = $crate::config::settings::Setting { flag: $flag, env: $env, default: $default, value_name: $value, help: $help }; )*
        /// Every setting of this list, in `--help` order.
        pub const $all: &[$crate::config::settings::Setting] = &[$($id),*];
    };
}

settings! {
    ENGINE_SETTINGS;
    DATA_DIR: "data-dir", "PORTCULLIS_DATA_DIR", "./data", "DIR", "Data directory of the embedded store and signing keys";
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
    IP_RATE_LIMIT: "ip-rate-limit", "PORTCULLIS_IP_RATE_LIMIT", "10/s,burst=20", "RATE", "Per-IP limit on every route that costs a hash, sends mail or takes a secret: register, login (both steps), refresh, password forgot/reset/change, email change and verification, MFA, passkeys (e.g. 10/s,burst=20, 600/min, off)";
    INTROSPECTION_RATE_LIMIT: "introspection-rate-limit", "PORTCULLIS_INTROSPECTION_RATE_LIMIT", "100/s,burst=200", "RATE", "Per-IP limit on introspection and revocation, and the same per account of the token (resource servers call them; off turns both off)";
    ACCOUNT_RATE_LIMIT: "account-rate-limit", "PORTCULLIS_ACCOUNT_RATE_LIMIT", "20/h,burst=10", "RATE", "Per-account limit, across pods, on password and email change, MFA enroll/confirm/disable, passkey registration and a login's passkey second step (off turns it off)";
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
    ENGINE_TIMEOUT: "engine-timeout", "PORTCULLIS_ENGINE_TIMEOUT", "30s", "DURATION", "Longest time one operation may hold its partition in the engine before it is abandoned (503)";
    KEY_PUBLISH_LEAD: "key-publish-lead", "PORTCULLIS_KEY_PUBLISH_LEAD", "1d", "DURATION", "How long a new signing key is published in the JWKS before it signs (resource servers refresh their key sets within it)";
    SIGNING_KEYS_REREAD: "signing-keys-reread", "PORTCULLIS_SIGNING_KEYS_REREAD", "30s", "DURATION", "How often --signing-keys-dir is reread (a removed key stops verifying at the next reread)";
    PURGE_INTERVAL: "purge-interval", "PORTCULLIS_PURGE_INTERVAL", "10m", "DURATION", "How often expired sessions and lockout entries are purged from the embedded store";
    VERIFIED_TOKEN_CACHE: "verified-token-cache", "PORTCULLIS_VERIFIED_TOKEN_CACHE", "100000", "N", "Verified access tokens cached in memory (a hit skips the signature check)";
    READ_CACHE: "read-cache", "PORTCULLIS_READ_CACHE", "100000", "N", "User profiles and live sessions cached in memory (embedded token store only)";
    VERIFY_EMAIL_TTL: "verify-email-ttl", "PORTCULLIS_VERIFY_EMAIL_TTL", "24h", "DURATION", "Lifetime of a mailed email verification link";
    PASSWORD_RESET_TTL: "password-reset-ttl", "PORTCULLIS_PASSWORD_RESET_TTL", "30m", "DURATION", "Lifetime of a mailed password reset link";
    EMAIL_CHANGE_TTL: "email-change-ttl", "PORTCULLIS_EMAIL_CHANGE_TTL", "24h", "DURATION", "Lifetime of a mailed email change confirmation link";
    MFA_TOKEN_TTL: "mfa-token-ttl", "PORTCULLIS_MFA_TOKEN_TTL", "5m", "DURATION", "How long the mfa_token of a login's first step waits for the second";
    TOTP_ISSUER: "totp-issuer", "PORTCULLIS_TOTP_ISSUER", "Portcullis", "NAME", "Issuer name authenticator apps show beside the account";
    OAUTH_PROVIDERS: "oauth-providers", "PORTCULLIS_OAUTH_PROVIDERS", "", "FILE", "Social-login providers and allowed client redirect URIs (TOML, or JSON by its .json name); none when empty";
    OAUTH_TIMEOUT: "oauth-timeout", "PORTCULLIS_OAUTH_TIMEOUT", "5s", "DURATION", "Longest wait for one call to a social-login provider (the request answers 503 after it)";
    WEBAUTHN_RP_ID: "webauthn-rp-id", "PORTCULLIS_WEBAUTHN_RP_ID", "localhost", "DOMAIN", "Passkeys' relying party ID: the domain credentials are bound to (the site's registrable domain or a parent of the pages' hosts)";
    WEBAUTHN_ORIGINS: "webauthn-origins", "PORTCULLIS_WEBAUTHN_ORIGINS", "http://localhost:8080,http://localhost", "URLS", "Comma-separated origins (scheme, host, port) whose pages may register and use passkeys; each on the RP ID; http only for localhost";
    MAILER_POLL: "mailer-poll", "PORTCULLIS_MAILER_POLL", "1s", "DURATION", "How often the mailer looks for due outbox messages";
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

/// No variables at all: every setting takes its flag or its default.
#[derive(Debug, Clone, Copy)]
pub struct NoVariables;

impl Source for NoVariables {
    fn get(&self, _: &str) -> Option<String> {
        None
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// A setting that could not be read; the message names the flag, the
/// variable and the value, on one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Flag values given on the command line, by flag name.
pub type Flags = HashMap<&'static str, String>;

/// Reads settings: a flag, else the variable, else the default.
pub struct Resolver<'a> {
    flags: &'a Flags,
    source: &'a dyn Source,
}

impl<'a> Resolver<'a> {
    /// A resolver of `flags`, then `source`, then the defaults.
    pub fn new(flags: &'a Flags, source: &'a dyn Source) -> Resolver<'a> {
        Resolver { flags, source }
    }

    /// The raw value of `s`.
    pub fn raw(&self, s: &Setting) -> String {
        self.flags
            .get(s.flag)
            .cloned()
            .or_else(|| self.source.get(s.env))
            .unwrap_or_else(|| s.default.to_owned())
    }

    /// `s` parsed by `f`; an error names the flag, the variable and the value.
    pub fn parse<T>(
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

    /// `s` as a whole number.
    pub fn num(&self, s: &Setting) -> Result<usize, ConfigError> {
        self.parse(s, |v| {
            v.parse::<usize>()
                .map_err(|_| "expected a whole number".to_owned())
        })
    }

    /// `s` as a duration.
    pub fn duration(&self, s: &Setting) -> Result<Duration, ConfigError> {
        self.parse(s, parse_duration)
    }
}

/// Parses a list of rates like `1/min,10/d` (each `<count>/<unit>`, the
/// burst equal to the count), or `off` for none.
pub fn parse_rates(v: &str) -> Result<Vec<RateLimit>, String> {
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
        out.push(RateLimit {
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

/// Parses a rate like `10/s,burst=20` (units `s`, `min`, `h`), or `off`
/// (`None`).
pub fn parse_rate(s: &str) -> Result<Option<RateLimit>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let err = |why: &str| format!("'{s}' is not a rate like 10/s,burst=20 or off: {why}");
    let (rate, burst) = match s.split_once(',') {
        Some((r, b)) => {
            let b = b
                .trim()
                .strip_prefix("burst=")
                .ok_or_else(|| err("expected burst=<n> after the comma"))?;
            (
                r,
                Some(b.parse::<u32>().map_err(|_| err("burst is not a number"))?),
            )
        }
        None => (s, None),
    };
    let (count, unit) = rate
        .split_once('/')
        .ok_or_else(|| err("expected <count>/<unit>"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| err("count is not a number"))?;
    let period_ms = match unit.trim() {
        "s" | "sec" | "second" => 1_000,
        "m" | "min" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        _ => return Err(err("unit must be s, min or h")),
    };
    let burst = burst.unwrap_or(count);
    if count == 0 || burst == 0 {
        return Err(err(
            "count and burst must be at least 1 (use off to disable)",
        ));
    }
    Ok(Some(RateLimit {
        count,
        period_ms,
        burst,
    }))
}

/// Checks an `http(s)://host` URL without a trailing slash.
pub fn parse_issuer(v: &str) -> Result<String, String> {
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
