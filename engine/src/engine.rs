//! Building, driving and stopping the [`Engine`]: the stores named by the
//! configuration, the hash pool, the shards, the background jobs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use portcullis_storage::embedded::EmbeddedStore;
use portcullis_storage::late::Late;
use portcullis_storage::redis::RedisClusterStore;
use portcullis_storage::scylla::ScyllaUserStore;
use portcullis_storage::{TokenStore, UserStore};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::config::{EngineConfig, TokenStoreConfig, UserStoreConfig};
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::hashpool::{HashPool, PoolSize};
use crate::jobs::bringup::{Connect, Pending, PendingStores};
use crate::ops::Operation;
use crate::readmodel::ReadModel;
use crate::responder::{Reply, Responder};
use crate::shard::Shards;
use crate::tokens::{TokenConfig, TokenService};

/// Why the engine could not start. The message names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A store could not be opened.
    #[error("cannot open the {store} store: {source}")]
    Store {
        /// Which store.
        store: &'static str,
        /// Why.
        source: portcullis_storage::StoreError,
    },
    /// The hash pool could not start.
    #[error("cannot start the password hash pool: {0}")]
    HashPool(String),
    /// The shard actors could not start.
    #[error("cannot start the shard actors: {0}")]
    Shards(String),
    /// Signing keys could not be loaded or created.
    #[error("cannot load or create signing keys: {0}")]
    Keys(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl Engine {
    /// Builds the stores named by `cfg`, then the engine.
    pub async fn start(
        cfg: EngineConfig,
        clock: SharedClock,
        handle: Handle,
    ) -> Result<Engine, StartError> {
        // The embedded store is opened only when one of the stores is it.
        let mut embedded: Option<Arc<EmbeddedStore>> = None;
        let mut open_embedded = || -> Result<Arc<EmbeddedStore>, StartError> {
            if let Some(e) = &embedded {
                return Ok(e.clone());
            }
            let e = Arc::new(EmbeddedStore::open(&cfg.data_dir).map_err(|source| {
                StartError::Store {
                    store: "embedded",
                    source,
                }
            })?);
            embedded = Some(e.clone());
            Ok(e)
        };
        // A shared store that cannot be reached in time does not stop the
        // server: it serves, not ready, and connects it in the background.
        let mut pending = PendingStores::default();
        let users: Arc<dyn UserStore> = match &cfg.user_store {
            UserStoreConfig::Embedded => open_embedded()?,
            UserStoreConfig::Scylla(sc) => {
                let sc = (**sc).clone();
                let connect: Connect<dyn UserStore> = Box::new(move || {
                    let sc = sc.clone();
                    Box::pin(async move {
                        let s: Arc<dyn UserStore> = Arc::new(ScyllaUserStore::connect(sc).await?);
                        Ok(s)
                    })
                });
                match connect_with_retry("scylla", cfg.store_connect_timeout, &connect).await {
                    Ok(s) => s,
                    Err(StartError::Store { source, .. }) if source.is_transient() => {
                        let late = Arc::new(Late::new("scylla"));
                        pending.users = Some(Pending {
                            name: "scylla",
                            late: late.clone(),
                            connect,
                        });
                        late
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        let tokens: Arc<dyn TokenStore> = match &cfg.token_store {
            TokenStoreConfig::Embedded => open_embedded()?,
            TokenStoreConfig::RedisCluster(rc) => {
                let rc = rc.clone();
                let connect: Connect<dyn TokenStore> = Box::new(move || {
                    let rc = rc.clone();
                    Box::pin(async move {
                        let s: Arc<dyn TokenStore> =
                            Arc::new(RedisClusterStore::connect(rc).await?);
                        Ok(s)
                    })
                });
                match connect_with_retry("redis-cluster", cfg.store_connect_timeout, &connect).await
                {
                    Ok(s) => s,
                    Err(StartError::Store { source, .. }) if source.is_transient() => {
                        let late = Arc::new(Late::new("redis-cluster"));
                        pending.tokens = Some(Pending {
                            name: "redis-cluster",
                            late: late.clone(),
                            connect,
                        });
                        late
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if matches!(cfg.user_store, UserStoreConfig::Scylla(_))
            && matches!(cfg.token_store, TokenStoreConfig::Embedded)
        {
            tracing::warn!(
                "users are in ScyllaDB but sessions in this pod's embedded store: run a single pod, or use --token-store redis-cluster so every pod shares sessions"
            );
        }
        if !pending.is_empty() {
            tracing::warn!(
                users = pending.users.is_some(),
                tokens = pending.tokens.is_some(),
                "serving without a store that is not reachable yet: not ready until it connects"
            );
        }
        Self::start_inner(cfg, clock, handle, users, tokens, pending).await
    }

    /// Builds the engine on stores the caller opened (tests, benchmarks).
    pub async fn start_with_stores(
        cfg: EngineConfig,
        clock: SharedClock,
        handle: Handle,
        users: Arc<dyn UserStore>,
        tokens: Arc<dyn TokenStore>,
    ) -> Result<Engine, StartError> {
        Self::start_inner(cfg, clock, handle, users, tokens, PendingStores::default()).await
    }

    async fn start_inner(
        cfg: EngineConfig,
        clock: SharedClock,
        handle: Handle,
        users: Arc<dyn UserStore>,
        tokens: Arc<dyn TokenStore>,
        pending: PendingStores,
    ) -> Result<Engine, StartError> {
        let hash = HashPool::with_niceness(
            cfg.password_hash,
            PoolSize {
                threads: cfg.effective_hash_threads(),
                queue: cfg.effective_hash_queue(),
            },
            cfg.hash_nice,
        )
        .map_err(|e| StartError::HashPool(e.to_string()))?;
        if !cfg.password_hash.meets_owasp_minimum() {
            tracing::warn!(
                scheme = %cfg.password_hash,
                "password hash setting is weaker than OWASP's recommendation; use it only for tests"
            );
        }
        let token_svc = TokenService::new(TokenConfig {
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            access_ttl: cfg.access_ttl,
            verified_cache_capacity: cfg.verified_token_cache,
        })
        .map_err(|e| StartError::Other(e.to_string()))?;
        let shards = Shards::spawn(
            cfg.effective_shards(),
            cfg.shard_capacity,
            cfg.operation_timeout,
            &handle,
        )
        .await
        .map_err(|e| StartError::Shards(e.to_string()))?;
        let read = ReadModel::new(tokens.is_local_authority(), cfg.read_cache);
        let data_keys = Arc::new(data_keys(&cfg)?);
        let mailer = crate::mail::Mailer {
            transport: crate::mail::transport::Transport::new(
                &cfg.account.transport.clone().unwrap_or_else(|| {
                    crate::mail::transport::TransportConfig::File(cfg.data_dir.join("mail"))
                }),
            )
            .map_err(StartError::Other)?,
            from: cfg.account.mail_from.parse().map_err(|e| {
                StartError::Other(format!(
                    "PORTCULLIS_MAIL_FROM '{}' is not an address: {e}",
                    cfg.account.mail_from
                ))
            })?,
            keys: data_keys.clone(),
        };
        let social = crate::social::Providers::new(&cfg.account.social, cfg.account.oauth_timeout)
            .map_err(StartError::Other)?;
        crate::metrics::register_social(&social.names());
        if !social.names().is_empty() {
            tracing::info!(providers = ?social.names(), "social login providers configured");
        }
        let webauthn = cfg
            .account
            .passkeys
            .relying_party()
            .map_err(StartError::Other)?;
        let core = Arc::new(Core {
            social,
            webauthn,
            cfg,
            clock,
            users,
            tokens,
            hash,
            token_svc,
            read,
            shards,
            handle: handle.clone(),
            shutdown: Default::default(),
            mailer,
            passwords: crate::passwords::PasswordPolicy::new(),
            outbox_len: Default::default(),
            logins: Default::default(),
            token_store_up: AtomicBool::new(pending.tokens.is_none()),
            ping_counter: AtomicU64::new(0),
            key_reload_at: AtomicU64::new(0),
        });
        if pending.tokens.is_none() {
            crate::signing::start_up(&core)
                .await
                .map_err(StartError::Keys)?;
        }
        core.token_svc
            .set_device_key(crate::tokens::device::DeviceKey::from_data_keys(
                &core.mailer.keys,
            ));
        let jobs = crate::jobs::spawn_all(&core, pending);
        let engine = Engine {
            core,
            jobs: Arc::new(std::sync::Mutex::new(jobs)),
        };
        tracing::info!(
            shards = engine.core.shards.all().len(),
            hash_threads = engine.core.hash.size().threads,
            hash_queue = engine.core.hash.size().queue,
            scheme = %engine.core.cfg.password_hash,
            "engine started"
        );
        Ok(engine)
    }

    /// Hands an operation to the engine. Never blocks: work that needs a
    /// partition goes to its shard, the rest is answered on the calling
    /// thread or on the engine's runtime. `reply` is answered exactly once.
    pub fn submit<O: Operation>(&self, op: O, reply: Responder<O::Reply>) {
        op.submit(self, reply);
    }

    /// Submits an operation and awaits its reply (tests, benchmarks, async
    /// callers).
    pub async fn call<O: Operation>(&self, op: O) -> Reply<O::Reply> {
        let (tx, rx) = oneshot::channel();
        self.submit(
            op,
            Responder::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.await.unwrap_or(Err(AuthError::Unavailable {
            retry_after_secs: 1,
        }))
    }

    /// The clock the engine reads.
    pub fn clock(&self) -> &SharedClock {
        &self.core.clock
    }

    /// A listener of the engine's shutdown signal, for threads and tasks
    /// that live as long as the engine.
    pub fn shutdown_listener(&self) -> crate::shutdown::Listener {
        self.core.shutdown.listen()
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.core.cfg
    }

    /// Liveness: false once a store is in a state only a restart leaves (for
    /// example after a failed fsync), so the orchestrator restarts the process.
    pub fn is_alive(&self) -> bool {
        !self.core.users.is_broken() && !self.core.tokens.is_broken()
    }

    /// Password hash jobs in flight (for tests and metrics).
    pub fn hash_jobs_in_flight(&self) -> usize {
        self.core.hash.in_flight()
    }

    /// Stops taking operations, waits (up to `drain`) for admitted ones,
    /// then stops the background jobs and the shards, and flushes the stores.
    pub async fn shutdown(&self, drain: Duration) {
        if !self.core.shutdown.begin() {
            return;
        }
        let deadline = tokio::time::Instant::now() + drain;
        while self.core.shards.all().iter().any(|s| s.depth() > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Drained: every job ends after its current run.
        self.core.shutdown.stop_listeners();
        let tasks = std::mem::take(
            &mut *self
                .jobs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for t in tasks {
            let _ = t.await;
        }
        self.core.shards.stop().await;
        if let Err(e) = self.core.users.flush().await {
            tracing::error!(error = %e, "flushing the user store failed");
        }
        if let Err(e) = self.core.tokens.flush().await {
            tracing::error!(error = %e, "flushing the token store failed");
        }
        tracing::info!("engine stopped");
    }
}

/// Connects a store, retrying transient failures with backoff until `limit`
/// (a cluster that is still starting, a DNS name not yet published).
async fn connect_with_retry<S: ?Sized>(
    store: &'static str,
    limit: Duration,
    connect: &Connect<S>,
) -> Result<Arc<S>, StartError> {
    let deadline = tokio::time::Instant::now() + limit;
    let mut backoff = Duration::from_millis(100);
    loop {
        match connect().await {
            Ok(s) => return Ok(s),
            Err(e) if e.is_transient() && tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(store, error = %e, retry_in_ms = backoff.as_millis() as u64, "store not reachable yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(source) => return Err(StartError::Store { store, source }),
        }
    }
}

/// The data keys: configured, or (single node, embedded users only)
/// generated once in the data directory.
fn data_keys(cfg: &EngineConfig) -> Result<crate::datakey::DataKeys, StartError> {
    use crate::datakey::{DataKeyError, DataKeys};
    let keys = match (&cfg.account.data_key, &cfg.user_store) {
        (Some(k), _) => DataKeys::from_config(&k.0),
        (None, UserStoreConfig::Embedded) => DataKeys::load_or_create(&cfg.data_dir.join("keys")),
        (None, _) => Err(DataKeyError::Missing),
    };
    keys.map_err(|e| StartError::Keys(e.to_string()))
}
