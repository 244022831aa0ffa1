//! Resolving [`EngineConfig`] from its settings: flags, then variables,
//! then the defaults of [`super::settings`].

use std::path::PathBuf;
use std::time::Duration;

use portcullis_storage::scylla::config as scylla_cfg;

use super::settings::*;
use super::{
    AccountConfig, EngineConfig, LockoutPolicy, RedisClusterConfig, ScyllaConfig, ScyllaTls,
    Secret, TokenStoreConfig, UserStoreConfig,
};
use crate::clock::ms;
use crate::hashpool::HashScheme;
use crate::mail::transport::{SmtpSecurity, SmtpSettings, TransportConfig};

/// A duration setting of at least `min`.
fn at_least(min: Duration) -> impl Fn(&str) -> Result<Duration, String> {
    move |v| {
        let d = parse_duration(v)?;
        if d >= min {
            Ok(d)
        } else {
            Err(format!("must be at least {} ms", ms(min)))
        }
    }
}

impl EngineConfig {
    /// Resolves every engine setting from `flags`, then `source`, then the
    /// defaults.
    pub fn resolve(flags: &Flags, source: &dyn Source) -> Result<EngineConfig, ConfigError> {
        let r = Resolver::new(flags, source);
        let issuer = r.parse(&ISSUER, parse_issuer)?;
        let data_dir = PathBuf::from(r.raw(&DATA_DIR));
        let audience = r.parse(&AUDIENCE, |v| {
            if v.is_empty() {
                Err("must not be empty".to_owned())
            } else {
                Ok(v.to_owned())
            }
        })?;
        let refresh_reuse_grace = Duration::from_millis(r.parse(&REFRESH_REUSE_GRACE_MS, |v| {
            v.parse::<u64>()
                .map_err(|_| "expected milliseconds".to_owned())
        })?);
        let password_hash = r.parse(&PASSWORD_HASH, |v| {
            v.parse::<HashScheme>().map_err(|e| e.to_string())
        })?;
        let hash_threads = r.num(&HASH_THREADS)?;
        let hash_queue = r.num(&HASH_QUEUE)?;
        let hash_nice = r.parse(&HASH_NICE, |v| match v.parse::<i32>() {
            Ok(n) if (0..=19).contains(&n) => Ok(n),
            _ => Err("expected a whole number from 0 to 19".to_owned()),
        })?;
        let shards = r.num(&SHARDS)?;
        let shard_capacity = r.parse(&SHARD_CAPACITY, |v| match v.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("expected a positive whole number".to_owned()),
        })?;
        let operation_timeout = r.duration(&ENGINE_TIMEOUT)?;
        let access_ttl = r.duration(&ACCESS_TOKEN_TTL)?;
        let refresh_ttl = r.duration(&REFRESH_TOKEN_TTL)?;
        let session_max_age = r.duration(&SESSION_MAX_AGE)?;
        let key_rotation_interval = r.duration(&KEY_ROTATION_INTERVAL)?;
        let signing_keys_dir = Some(r.raw(&SIGNING_KEYS_DIR))
            .filter(|d| !d.is_empty())
            .map(PathBuf::from);
        if access_ttl < Duration::from_secs(10) || access_ttl > Duration::from_secs(86_400) {
            return Err(ConfigError(format!(
                "invalid --{} / {}: must be between 10s and 1d",
                ACCESS_TOKEN_TTL.flag, ACCESS_TOKEN_TTL.env
            )));
        }
        if key_rotation_interval <= access_ttl {
            return Err(ConfigError(format!(
                "invalid --{} / {}: must be longer than the access-token lifetime",
                KEY_ROTATION_INTERVAL.flag, KEY_ROTATION_INTERVAL.env
            )));
        }
        let lockout = LockoutPolicy {
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
        let account_lockout = LockoutPolicy {
            max_failures: r.parse(&ACCOUNT_LOCKOUT_THRESHOLD, positive_u32)?,
            ..lockout
        };
        let mfa_lockout = LockoutPolicy {
            max_failures: r.parse(&MFA_LOCKOUT_THRESHOLD, positive_u32)?,
            ..lockout
        };
        let device_token_ttl = r.duration(&DEVICE_TOKEN_TTL)?;
        let max_sessions_per_user = r.num(&MAX_SESSIONS_PER_USER)?;
        let account_rate_limit = r.parse(&ACCOUNT_RATE_LIMIT, parse_rate)?;
        let introspection_rate_limit = r.parse(&INTROSPECTION_RATE_LIMIT, parse_rate)?;
        let store_connect_timeout = r.duration(&STORE_CONNECT_TIMEOUT)?;
        let user_store = match r.raw(&USER_STORE).as_str() {
            "embedded" => UserStoreConfig::Embedded,
            "scylla" => UserStoreConfig::Scylla(Box::new(scylla(&r, true)?)),
            other => {
                return Err(ConfigError(format!(
                    "invalid --{} / {}: '{other}' (expected embedded or scylla)",
                    USER_STORE.flag, USER_STORE.env
                )));
            }
        };
        let token_store = match r.raw(&TOKEN_STORE).as_str() {
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
        let account = account(&r)?;
        let shared_rate_limit = r.parse(&IP_RATE_LIMIT, parse_rate)?;
        let key_publish_lead = r.duration(&KEY_PUBLISH_LEAD)?;
        let keys_dir_reread = r.parse(&SIGNING_KEYS_REREAD, at_least(Duration::from_millis(10)))?;
        let purge_interval = r.parse(&PURGE_INTERVAL, at_least(Duration::from_secs(1)))?;
        let verified_token_cache = r.num(&VERIFIED_TOKEN_CACHE)?;
        let read_cache = r.num(&READ_CACHE)?;
        Ok(EngineConfig {
            data_dir,
            user_store,
            token_store,
            issuer,
            audience,
            shards,
            shard_capacity,
            password_hash,
            hash_threads,
            hash_nice,
            hash_queue,
            access_ttl,
            refresh_ttl,
            session_max_age,
            refresh_reuse_grace,
            lockout,
            account_lockout,
            mfa_lockout,
            device_token_ttl,
            max_sessions_per_user,
            account_rate_limit,
            introspection_rate_limit,
            key_rotation_interval,
            key_publish_lead,
            signing_keys_dir,
            keys_dir_reread,
            verified_token_cache,
            read_cache,
            operation_timeout,
            purge_interval,
            shared_rate_limit,
            store_connect_timeout,
            account,
        })
    }
}

/// The ScyllaDB settings alone (`portcullis migrate` needs nothing else).
/// `need_nodes`: whether contact points are required (not for `--print`).
pub fn resolve_scylla(
    flags: &Flags,
    source: &dyn Source,
    need_nodes: bool,
) -> Result<ScyllaConfig, ConfigError> {
    scylla(&Resolver::new(flags, source), need_nodes)
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

/// `None` as the transport is the file transport in `<data dir>/mail`,
/// resolved by the engine against its final data directory.
fn account(r: &Resolver<'_>) -> Result<AccountConfig, ConfigError> {
    let opt = |s: &Setting| Some(r.raw(s)).filter(|v| !v.trim().is_empty());
    let public_base_url = match opt(&PUBLIC_BASE_URL) {
        Some(_) => Some(r.parse(&PUBLIC_BASE_URL, parse_issuer)?),
        None => None,
    };
    let mail_from = r.parse(&MAIL_FROM, |v| {
        crate::mail::check_mailbox(v).map(|()| v.to_owned())
    })?;
    let transport = match r.raw(&MAIL_TRANSPORT).as_str() {
        "file" => opt(&MAIL_DIR).map(|d| TransportConfig::File(PathBuf::from(d))),
        "smtp" => Some({
            let host = opt(&SMTP_HOST).ok_or_else(|| {
                ConfigError(format!(
                    "--{} smtp needs --{} / {}",
                    MAIL_TRANSPORT.flag, SMTP_HOST.flag, SMTP_HOST.env
                ))
            })?;
            let port = r.parse(&SMTP_PORT, |v| {
                v.parse::<u16>()
                    .map_err(|_| "expected a port number".to_owned())
            })?;
            TransportConfig::Smtp(SmtpSettings {
                host,
                port: (port != 0).then_some(port),
                security: r.parse(&SMTP_SECURITY, |v| match v {
                    "starttls" => Ok(SmtpSecurity::StartTls),
                    "tls" => Ok(SmtpSecurity::Tls),
                    "none" => Ok(SmtpSecurity::None),
                    _ => Err("expected starttls, tls or none".to_owned()),
                })?,
                username: opt(&SMTP_USERNAME),
                password: opt(&SMTP_PASSWORD).map(zeroize::Zeroizing::new),
                ca_file: opt(&SMTP_CA_FILE).map(PathBuf::from),
                timeout: r.duration(&SMTP_TIMEOUT)?,
            })
        }),
        other => {
            return Err(ConfigError(format!(
                "invalid --{} / {}: '{other}' (expected file or smtp)",
                MAIL_TRANSPORT.flag, MAIL_TRANSPORT.env
            )));
        }
    };
    Ok(AccountConfig {
        public_base_url,
        mail_from,
        transport,
        data_key: opt(&DATA_KEY).map(Secret::new),
        verify_email_ttl: r.parse(&VERIFY_EMAIL_TTL, at_least(Duration::from_secs(60)))?,
        password_reset_ttl: r.parse(&PASSWORD_RESET_TTL, at_least(Duration::from_secs(60)))?,
        email_change_ttl: r.parse(&EMAIL_CHANGE_TTL, at_least(Duration::from_secs(60)))?,
        mfa_token_ttl: r.parse(&MFA_TOKEN_TTL, at_least(Duration::from_secs(30)))?,
        totp_issuer: r.parse(&TOTP_ISSUER, |v| {
            if v.is_empty() || v.contains(':') {
                Err("must be a non-empty name without ':'".to_owned())
            } else {
                Ok(v.to_owned())
            }
        })?,
        mailer_poll: r.parse(&MAILER_POLL, at_least(Duration::from_millis(10)))?,
        social: match opt(&OAUTH_PROVIDERS) {
            None => crate::social::SocialConfig::none(),
            Some(path) => {
                crate::social::SocialConfig::load(std::path::Path::new(&path)).map_err(|e| {
                    ConfigError(format!(
                        "invalid --{} / {}: {e}",
                        OAUTH_PROVIDERS.flag, OAUTH_PROVIDERS.env
                    ))
                })?
            }
        },
        oauth_timeout: r.parse(&OAUTH_TIMEOUT, at_least(Duration::from_millis(100)))?,
        passkeys: {
            let rp_id = r.raw(&WEBAUTHN_RP_ID);
            let rp_name = r.raw(&TOTP_ISSUER);
            r.parse(&WEBAUTHN_ORIGINS, |origins| {
                crate::passkeys::PasskeyConfig::parse(&rp_id, origins, &rp_name)
            })?
        },
        mail_limits: r.parse(&MAIL_LIMIT, parse_rates)?,
        outbox_max: r.num(&OUTBOX_MAX)? as u64,
        reseal_interval: r.parse(&DATA_KEY_RESEAL_INTERVAL, at_least(Duration::from_secs(1)))?,
    })
}
