//! The engine's typed configuration. It is resolved from the settings of
//! [`settings`] (flags, variables, and there the one default of each);
//! [`EngineConfig::new`] gives those defaults, which tests then adjust.

use std::path::PathBuf;
use std::time::Duration;

mod resolve;
pub mod settings;

pub use resolve::resolve_scylla;

pub use portcullis_storage::redis::RedisClusterConfig;
pub use portcullis_storage::scylla::{ScyllaConfig, ScyllaTls, Tablets};
pub use portcullis_storage::{LockoutPolicy, RateLimit};

use crate::hashpool::HashScheme;

/// Where users live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserStoreConfig {
    /// The embedded store in the data directory.
    Embedded,
    /// A ScyllaDB cluster shared by every pod.
    Scylla(Box<ScyllaConfig>),
}

/// Where sessions, refresh-token state, lockout counters and keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenStoreConfig {
    /// The embedded store in the data directory.
    Embedded,
    /// A Redis Cluster shared by every pod.
    RedisCluster(RedisClusterConfig),
}

/// Everything the engine needs to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Data directory of the embedded store and the signing keys.
    pub data_dir: PathBuf,
    /// User store backend.
    pub user_store: UserStoreConfig,
    /// Token store backend.
    pub token_store: TokenStoreConfig,
    /// JWT `iss` (and the base of the discovery document).
    pub issuer: String,
    /// JWT `aud`.
    pub audience: String,
    /// Shard actors; 0 means 4 × available cores.
    pub shards: usize,
    /// Operations admitted per shard (queued plus running) before new ones are
    /// refused with `overloaded`.
    pub shard_capacity: usize,
    /// Scheme for new password hashes.
    pub password_hash: HashScheme,
    /// Hash pool threads; 0 means the number of available cores.
    pub hash_threads: usize,
    /// How many steps below the process's CPU priority the hash threads run
    /// (0: the same): request handling goes first when both compete.
    pub hash_nice: i32,
    /// Hash jobs that may wait beyond the running ones; 0 means 4 per thread
    /// (a login waits at most four hashes, about 80 ms at OWASP settings,
    /// before a thread takes it; beyond, it is refused at once).
    pub hash_queue: usize,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Refresh-token lifetime (sliding: every rotation extends it).
    pub refresh_ttl: Duration,
    /// Absolute session lifetime, whatever the refreshes.
    pub session_max_age: Duration,
    /// A rotated-away refresh token presented within this window is refused
    /// without revoking the session (benign concurrent refresh).
    pub refresh_reuse_grace: Duration,
    /// Password failures counted per (account, client address), and per
    /// device token: this many within the window lock that pair (or that
    /// device) with backoff. Nobody else is affected.
    pub lockout: LockoutPolicy,
    /// Password failures of an account from clients without a valid device
    /// token, whatever their address: this many within the window lock the
    /// account for such clients only (a client presenting a valid device
    /// token is never stopped by it). OWASP's device-cookie scheme.
    pub account_lockout: LockoutPolicy,
    /// Wrong second-factor codes of an account: this many within the window
    /// kill the pending `mfa_token` and lock the second step with backoff,
    /// whatever the password does. Only a completed second factor clears it.
    pub mfa_lockout: LockoutPolicy,
    /// Lifetime of a device token (returned by a successful password login).
    pub device_token_ttl: Duration,
    /// Live sessions a user may have; a new one past it ends the least
    /// recently used. 0: no limit.
    pub max_sessions_per_user: usize,
    /// Per-account limit on routes that check a credential or change one
    /// (password and email change, MFA enroll/confirm/disable, verification
    /// requests), across every pod.
    pub account_rate_limit: Option<RateLimit>,
    /// Per-account and per-address limit on introspection and revocation.
    pub introspection_rate_limit: Option<RateLimit>,
    /// How long a signing key signs before its successor takes over.
    pub key_rotation_interval: Duration,
    /// How long a new signing key is published in the JWKS before it signs.
    pub key_publish_lead: Duration,
    /// Signing keys managed outside Portcullis (a mounted Secret): when set,
    /// `signing.pem` in this directory signs, every other `*.pem` is only
    /// published, the directory is reread every `keys_dir_reread`, and no
    /// key is generated, rotated or stored by the engine.
    pub signing_keys_dir: Option<PathBuf>,
    /// How often `signing_keys_dir` is reread. A key
    /// removed from it stops verifying at the next reread, cached
    /// verifications included.
    pub keys_dir_reread: Duration,
    /// Verified access tokens cached in memory.
    pub verified_token_cache: usize,
    /// User profiles and live sessions cached in memory (embedded token store only).
    pub read_cache: usize,
    /// Longest time one operation may hold its partition before it is abandoned.
    pub operation_timeout: Duration,
    /// How often expired sessions and lockout entries are purged.
    pub purge_interval: Duration,
    /// Per-address limit on register, login and refresh enforced across every
    /// pod through a shared token store (Redis Cluster). Ignored with the
    /// embedded store, where the edge's in-process limiter is the only line.
    pub shared_rate_limit: Option<RateLimit>,
    /// How long start-up waits for a shared store before serving without
    /// it (not ready, connecting it in the background).
    pub store_connect_timeout: Duration,
    /// Email flows, MFA and the mailer.
    pub account: AccountConfig,
}

/// A secret setting: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub zeroize::Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(zeroize::Zeroizing::new(s.into()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Email flows (verification, password reset, email change), TOTP MFA and
/// the mailer.
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// Base URL of the pages mail links point at; each link is
    /// `<base>/<page>?token=<one-time token>`. Defaults to the issuer.
    pub public_base_url: Option<String>,
    /// `From:` of every message.
    pub mail_from: String,
    /// How mail leaves; `None` is the file transport in `<data dir>/mail`.
    pub transport: Option<crate::mail::transport::TransportConfig>,
    /// Keys sealing TOTP secrets and queued mail (`PORTCULLIS_DATA_KEY`:
    /// comma-separated base64 keys, the first seals). `None` generates one
    /// in the data directory, which only a single-node deployment may do.
    pub data_key: Option<Secret>,
    /// Lifetime of an email verification token.
    pub verify_email_ttl: Duration,
    /// Lifetime of a password reset token.
    pub password_reset_ttl: Duration,
    /// Lifetime of an email change token.
    pub email_change_ttl: Duration,
    /// Lifetime of the `mfa_token` between password and code.
    pub mfa_token_ttl: Duration,
    /// Issuer shown by authenticator apps.
    pub totp_issuer: String,
    /// How often the mailer looks for due messages.
    pub mailer_poll: Duration,
    /// Social-login providers (`PORTCULLIS_OAUTH_PROVIDERS`), read and
    /// checked when the settings are resolved.
    pub social: crate::social::SocialConfig,
    /// Longest wait for one call to a provider.
    pub oauth_timeout: Duration,
    /// The passkeys' relying party (`PORTCULLIS_WEBAUTHN_RP_ID`,
    /// `PORTCULLIS_WEBAUTHN_ORIGINS`).
    pub passkeys: crate::passkeys::PasskeyConfig,
    /// Mail each flow may send per account and per recipient address: every
    /// limit must admit (e.g. one a minute and ten a day).
    pub mail_limits: Vec<RateLimit>,
    /// Messages the outbox may hold; beyond, flows that send mail answer
    /// 503 until the mailer catches up.
    pub outbox_max: u64,
    /// How often a background pass re-seals secrets still sealed under an
    /// older data key (only while more than one key is configured).
    pub reseal_interval: Duration,
}

impl EngineConfig {
    /// The defaults of every setting, with the given data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> EngineConfig {
        #[allow(clippy::expect_used)] // Invariant: the defaults parse (`the_defaults_resolve`).
        let mut cfg = EngineConfig::resolve(&settings::Flags::new(), &settings::NoVariables)
            .expect("the default settings resolve");
        cfg.data_dir = data_dir.into();
        cfg
    }

    /// Cores available to this process.
    pub fn available_cores() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    }

    /// Shard count after applying the default.
    pub fn effective_shards(&self) -> usize {
        if self.shards == 0 {
            4 * Self::available_cores()
        } else {
            self.shards
        }
    }

    /// Hash threads after applying the default.
    pub fn effective_hash_threads(&self) -> usize {
        if self.hash_threads == 0 {
            Self::available_cores()
        } else {
            self.hash_threads
        }
    }

    /// Hash queue after applying the default.
    pub fn effective_hash_queue(&self) -> usize {
        if self.hash_queue == 0 {
            4 * self.effective_hash_threads()
        } else {
            self.hash_queue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_resolve() {
        let cfg = EngineConfig::resolve(&settings::Flags::new(), &settings::NoVariables).unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("./data"));
        assert_eq!(cfg.access_ttl, Duration::from_secs(900));
        assert_eq!(cfg.keys_dir_reread, Duration::from_secs(30));
        assert_eq!(cfg.account.mfa_token_ttl, Duration::from_secs(300));
    }
}
