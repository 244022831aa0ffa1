//! The [`Engine`]: built from configuration, fed [`Command`]s, answering
//! through [`Responder`]s.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use portcullis_storage::embedded::EmbeddedStore;
use portcullis_storage::late::Late;
use portcullis_storage::redis::RedisClusterStore;
use portcullis_storage::scylla::ScyllaUserStore;
use portcullis_storage::{TokenStore, UserId, UserStore};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};

use crate::bringup::{Connect, Pending, PendingStores};
use crate::clock::SharedClock;
use crate::command::{Check, Command, Outcome, Reply, Responder};
use crate::config::{EngineConfig, TokenStoreConfig, UserStoreConfig};
use crate::core::Core;
use crate::error::{AuthError, TokenProblem};
use crate::flows::{account, login, oauth, refresh, register};
use crate::hashpool::{HashPool, PoolSize};
use crate::metrics as m;
use crate::readmodel::{Known, ReadModel};
use crate::shard::{PartitionKey, Shards};
use crate::tokens::keys::{self, KeyChange, KeyRing, RotationPolicy};
use crate::tokens::{TokenConfig, TokenService, refresh as refresh_token};

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

/// The running engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    core: Arc<Core>,
    background: Arc<Background>,
}

struct Background {
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    ping_counter: AtomicU64,
    /// When the signing keys were last reloaded on demand (Unix ms).
    key_reload_at: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shards", &self.core.shards.all().len())
            .field("hash_pool", &self.core.hash)
            .finish_non_exhaustive()
    }
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
        let mailer = crate::mail::mailer::Mailer {
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
        let core = Arc::new(Core {
            cfg,
            clock,
            users,
            tokens,
            hash,
            token_svc,
            read,
            shards,
            handle: handle.clone(),
            closing: Default::default(),
            mailer,
            passwords: crate::passwords::PasswordPolicy::new(),
            outbox_len: Default::default(),
            logins: Default::default(),
            token_store_up: AtomicBool::new(pending.tokens.is_none()),
        });
        if pending.tokens.is_none() {
            token_start_up(&core).await.map_err(StartError::Keys)?;
        }
        core.token_svc
            .set_device_key(crate::tokens::device::DeviceKey::from_data_keys(
                &core.mailer.keys,
            ));
        let (stop, _) = watch::channel(false);
        let engine = Engine {
            core,
            background: Arc::new(Background {
                stop,
                tasks: Default::default(),
                ping_counter: AtomicU64::new(0),
                key_reload_at: AtomicU64::new(0),
            }),
        };
        engine.spawn_background();
        if !pending.is_empty() {
            let stop = engine.background.stop.subscribe();
            let task =
                engine
                    .core
                    .handle
                    .spawn(crate::bringup::run(engine.core.clone(), pending, stop));
            engine
                .background
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(task);
        }
        tracing::info!(
            shards = engine.core.shards.all().len(),
            hash_threads = engine.core.hash.size().threads,
            hash_queue = engine.core.hash.size().queue,
            scheme = %engine.core.cfg.password_hash,
            "engine started"
        );
        Ok(engine)
    }

    fn spawn_background(&self) {
        let mut tasks = self
            .background
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let core = self.core.clone();
        let mut stop = self.background.stop.subscribe();
        tasks.push(self.core.handle.spawn(async move {
            let every = if core.cfg.signing_keys_dir.is_some() {
                // tokio's interval panics on zero.
                core.cfg.keys_dir_reread.max(Duration::from_millis(10))
            } else {
                Duration::from_secs(600)
            };
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = maintain_keys(&core).await {
                            tracing::error!(error = %e, "signing key maintenance failed");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        }));
        let core = self.core.clone();
        let mut stop = self.background.stop.subscribe();
        tasks.push(self.core.handle.spawn(async move {
            let mut tick = tokio::time::interval(core.cfg.purge_interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        match core.tokens.purge_expired(core.now_ms()).await {
                            Ok(n) if n > 0 => tracing::info!(removed = n, "purged expired sessions"),
                            Ok(_) => {}
                            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        }));
        let core = self.core.clone();
        let mut stop = self.background.stop.subscribe();
        tasks.push(self.core.handle.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(m::SAMPLE_INTERVAL_SECS));
            let labels: Vec<String> = (0..core.shards.all().len()).map(|i| i.to_string()).collect();
            let cpu = metrics::counter!(m::PROCESS_CPU_MICROSECONDS_TOTAL);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        for (shard, label) in core.shards.all().iter().zip(&labels) {
                            metrics::gauge!(m::SHARD_MAILBOX_DEPTH, "shard" => label.clone()).set(shard.depth() as f64);
                        }
                        if let Some(us) = crate::clock::process_cpu_us() {
                            cpu.absolute(us);
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        }));
        let core = self.core.clone();
        let mut stop = self.background.stop.subscribe();
        tasks.push(self.core.handle.spawn(async move {
            let mut tick = tokio::time::interval(STORE_SAMPLE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut round = 0u64;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        sample_stores(&core, round.is_multiple_of(SESSIONS_SAMPLE_EVERY)).await;
                        round += 1;
                    }
                    _ = stop.changed() => break,
                }
            }
        }));
        let core = self.core.clone();
        let mut stop = self.background.stop.subscribe();
        tasks.push(self.core.handle.spawn(async move {
            let mut tick = tokio::time::interval(core.cfg.account.reseal_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = crate::flows::reseal_pass(&core).await {
                            tracing::warn!(error = %e, "data-key re-sealing pass failed; retried later");
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
        }));
        let core = self.core.clone();
        let mut stop = self.background.stop.subscribe();
        tasks.push(self.core.handle.spawn(async move {
            let mut tick = tokio::time::interval(core.cfg.account.mailer_poll);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        crate::mail::mailer::deliver_due(&core, &core.mailer).await;
                    }
                    _ = stop.changed() => break,
                }
            }
        }));
    }

    /// Hands a command to the engine. Never blocks: work that needs a
    /// partition goes to its shard, the rest is answered on the calling thread
    /// or on the engine's runtime. `reply` is called exactly once.
    pub fn submit(&self, cmd: Command, reply: Responder) {
        let core = &self.core;
        match cmd {
            // No key loaded yet (start-up without the token store): an empty
            // key set, cached by a resource server, would refuse every good
            // token for minutes.
            Command::Jwks if !core.token_svc.has_keys() => {
                reply.send(Err(AuthError::Unavailable {
                    retry_after_secs: 1,
                }));
            }
            Command::Jwks => reply.send(Ok(Outcome::Jwks(core.token_svc.jwks()))),
            Command::Register {
                email,
                password,
                name,
                client,
            } => {
                let key = PartitionKey::Email(email.as_str().to_owned());
                let req = register::Register {
                    email,
                    password,
                    name,
                    client,
                };
                core.dispatch(key, reply, move |c| register::run(c, req));
            }
            Command::Login {
                email,
                password,
                device_token,
                client,
            } => {
                // At most two logins of one account at once: more would wait
                // in its partition holding hash-pool places.
                let Some(account_slot) = core.logins.enter(email.as_str()) else {
                    metrics::counter!(m::LOGINS_TOTAL, "result" => "throttled").increment(1);
                    reply.send(Err(AuthError::TooManyRequests {
                        retry_after_secs: 1,
                    }));
                    return;
                };
                // The hash-pool place first: a login the pool cannot take is
                // refused now, in microseconds, before it waits for its
                // partition or counts as an attempt.
                let Some((slot, reply)) = reserve_hash(core, reply) else {
                    metrics::counter!(m::LOGINS_TOTAL, "result" => "overloaded").increment(1);
                    return;
                };
                let key = PartitionKey::Email(email.as_str().to_owned());
                let req = login::Login {
                    email,
                    password,
                    device_token,
                    client,
                    slot,
                };
                // Counted from admission to answer; a refused or abandoned
                // login drops the guard with the closure.
                let in_flight = login::InFlight::enter();
                core.dispatch(key, reply, move |c| async move {
                    let _in_flight = in_flight;
                    let _account_slot = account_slot;
                    login::run(c, req).await
                });
            }
            Command::Refresh {
                refresh_token,
                client,
            } => match refresh_token::parse(&refresh_token) {
                None => {
                    metrics::counter!(m::REFRESHES_TOTAL, "result" => "invalid").increment(1);
                    reply.send(Err(AuthError::InvalidGrant));
                }
                Some(t) => {
                    core.dispatch_unordered(PartitionKey::User(t.user_id), reply, move |c| {
                        refresh::run(c, t, client)
                    })
                }
            },
            Command::Me { bearer } => self.with_access(bearer, reply, |engine, access, reply| {
                let core = &engine.core;
                let now = core.now_ms();
                let known = core.read.session(access.user_id, access.session_id, now);
                let cached = match known {
                    Known::Live => core.read.user(access.user_id),
                    _ => None,
                };
                match (known, cached) {
                    (_, Some(user)) => reply.send(Ok(Outcome::User(user))),
                    (Known::Revoked, None) => {
                        reply.send(Err(AuthError::Unauthenticated(TokenProblem::Revoked)))
                    }
                    _ => core.dispatch(PartitionKey::User(access.user_id), reply, move |c| {
                        account::me(c, access)
                    }),
                }
            }),
            Command::Logout { bearer } => self.authed(bearer, reply, account::logout),
            Command::LogoutAll { bearer } => self.authed(bearer, reply, account::logout_all),
            Command::ListSessions { bearer } => self.authed(bearer, reply, account::list_sessions),
            Command::UpdateMe { bearer, patch } => {
                self.authed(bearer, reply, move |c, a| account::update_me(c, a, patch))
            }
            Command::DeleteSession { bearer, session_id } => {
                let target = portcullis_storage::SessionId::from_b64(&session_id);
                self.authed(bearer, reply, move |c, a| {
                    account::delete_session(c, a, target)
                })
            }
            Command::RequestEmailVerification { bearer, client } => {
                self.authed(bearer, reply, move |c, a| async move {
                    crate::flows::shared_rate_limit(&c, "verify", &client).await?;
                    crate::flows::verify::request(c, a).await
                });
            }
            Command::ConfirmEmailVerification { token } => {
                match crate::tokens::onetime::parse(
                    crate::tokens::onetime::Purpose::VerifyEmail,
                    &token,
                ) {
                    Some(t) => core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                        crate::flows::verify::confirm(c, t)
                    }),
                    None => reply.send(Err(AuthError::InvalidToken)),
                }
            }
            Command::ForgotPassword { email, client } => {
                // Answered before any lookup, so neither the answer nor its
                // timing says whether the address has an account: first the
                // mail limits of the address (the same whether or not it has
                // an account), then 202, then the work, in the email
                // partition under its admission bound.
                let engine = self.clone();
                core.handle.spawn(async move {
                    let core = &engine.core;
                    let allowed = crate::flows::password::forgot_allowed(
                        core.clone(),
                        email.clone(),
                        client,
                    )
                    .await;
                    match allowed {
                        Ok(_) => reply.send(Ok(Outcome::Accepted)),
                        Err(e) => {
                            reply.send(Err(e));
                            return;
                        }
                    }
                    let key = PartitionKey::Email(email.as_str().to_owned());
                    let done = Responder::new(|r| {
                        if let Err(e) = r {
                            tracing::warn!(error = %e, "a password reset request was not carried out");
                        }
                    });
                    core.dispatch(key, done, move |c| {
                        crate::flows::password::forgot(c, email)
                    });
                });
            }
            Command::ResetPassword {
                token,
                new_password,
                client,
            } => match crate::tokens::onetime::parse(
                crate::tokens::onetime::Purpose::PasswordReset,
                &token,
            ) {
                Some(t) => {
                    let Some((slot, reply)) = reserve_hash(core, reply) else {
                        return;
                    };
                    core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                        crate::flows::password::reset(c, t, new_password, client, slot)
                    })
                }
                None => reply.send(Err(AuthError::InvalidToken)),
            },
            Command::ChangePassword {
                bearer,
                current_password,
                new_password,
                client,
            } => {
                let Some((slot, reply)) = reserve_hash(core, reply) else {
                    return;
                };
                self.authed(bearer, reply, move |c, a| async move {
                    crate::flows::shared_rate_limit(&c, "password_change", &client).await?;
                    crate::flows::password::change(c, a, current_password, new_password, slot).await
                })
            }
            Command::RequestEmailChange {
                bearer,
                new_email,
                password,
                client,
            } => {
                let Some((slot, reply)) = reserve_hash(core, reply) else {
                    return;
                };
                self.authed(bearer, reply, move |c, a| async move {
                    crate::flows::shared_rate_limit(&c, "email_change", &client).await?;
                    crate::flows::email_change::request(c, a, new_email, password, slot).await
                })
            }
            Command::ConfirmEmailChange { token } => match crate::tokens::onetime::parse(
                crate::tokens::onetime::Purpose::EmailChange,
                &token,
            ) {
                Some(t) => core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                    crate::flows::email_change::confirm(c, t)
                }),
                None => reply.send(Err(AuthError::InvalidToken)),
            },
            Command::EnrollTotp {
                bearer,
                password,
                client,
            } => {
                let Some((slot, reply)) = reserve_hash(core, reply) else {
                    return;
                };
                self.authed(bearer, reply, move |c, a| async move {
                    crate::flows::shared_rate_limit(&c, "mfa", &client).await?;
                    crate::flows::mfa::enroll(c, a, password, slot).await
                })
            }
            Command::ConfirmTotp {
                bearer,
                code,
                client,
            } => self.authed(bearer, reply, move |c, a| async move {
                crate::flows::shared_rate_limit(&c, "mfa", &client).await?;
                crate::flows::mfa::confirm(c, a, code).await
            }),
            Command::DisableTotp {
                bearer,
                code,
                password,
                client,
            } => {
                let Some((slot, reply)) = reserve_hash(core, reply) else {
                    return;
                };
                self.authed(bearer, reply, move |c, a| async move {
                    crate::flows::shared_rate_limit(&c, "mfa", &client).await?;
                    crate::flows::mfa::disable(c, a, code, password, slot).await
                })
            }
            Command::LoginMfa {
                mfa_token,
                code,
                client,
            } => match crate::tokens::onetime::parse(
                crate::tokens::onetime::Purpose::MfaLogin,
                &mfa_token,
            ) {
                Some(t) => core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                    crate::flows::mfa::login(c, t, code, client)
                }),
                None => reply.send(Err(AuthError::InvalidMfa)),
            },
            Command::Introspect { token, hint: _ } => {
                if let Some(t) = refresh_token::parse(&token) {
                    core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                        oauth::introspect_refresh(c, t)
                    });
                    return;
                }
                match core.token_svc.verify_access(&token, core.now_ms()) {
                    Err(p) => reply.send(match unverified(core, p) {
                        e @ AuthError::Unavailable { .. } => Err(e),
                        _ => Ok(Outcome::Introspection(
                            crate::command::Introspection::Inactive,
                        )),
                    }),
                    Ok(access) => {
                        let now = core.now_ms();
                        match core.read.session(access.user_id, access.session_id, now) {
                            Known::Live => reply
                                .send(Ok(Outcome::Introspection(oauth::active_access(&access)))),
                            Known::Revoked => reply.send(Ok(Outcome::Introspection(
                                crate::command::Introspection::Inactive,
                            ))),
                            Known::Unknown => {
                                core.dispatch(PartitionKey::User(access.user_id), reply, move |c| {
                                    oauth::introspect_access(c, access)
                                })
                            }
                        }
                    }
                }
            }
            Command::Revoke { token, hint: _ } => {
                if let Some(t) = refresh_token::parse(&token) {
                    core.dispatch(PartitionKey::User(t.user_id), reply, move |c| {
                        oauth::revoke_refresh(c, t)
                    });
                    return;
                }
                match core.token_svc.verify_access(&token, core.now_ms()) {
                    // RFC 7009: invalid tokens do not cause an error.
                    Err(p) => reply.send(match unverified(core, p) {
                        e @ AuthError::Unavailable { .. } => Err(e),
                        _ => Ok(Outcome::Done),
                    }),
                    Ok(access) => {
                        core.dispatch(PartitionKey::User(access.user_id), reply, move |c| {
                            oauth::revoke_access(c, access)
                        })
                    }
                }
            }
            Command::Readiness => {
                let core = core.clone();
                core.handle
                    .clone()
                    .spawn(async move { reply.send(readiness(&core).await) });
            }
            Command::Ping => {
                let n = self.background.ping_counter.fetch_add(1, Ordering::Relaxed);
                let mut id = [0u8; 16];
                id[..8].copy_from_slice(&n.to_le_bytes());
                core.dispatch(PartitionKey::User(UserId(id)), reply, |_| async {
                    Ok(Outcome::Done)
                });
            }
        }
    }

    fn verify(&self, bearer: Option<&str>) -> Result<crate::tokens::VerifiedAccess, AuthError> {
        let token = bearer.ok_or(AuthError::Unauthenticated(TokenProblem::Missing))?;
        self.core
            .token_svc
            .verify_access(token, self.core.now_ms())
            .map_err(|p| unverified(&self.core, p))
    }

    fn authed<F, Fut>(&self, bearer: Option<String>, reply: Responder, flow: F)
    where
        F: FnOnce(Arc<Core>, crate::tokens::VerifiedAccess) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Reply> + Send + 'static,
    {
        self.with_access(bearer, reply, move |engine, access, reply| {
            engine
                .core
                .dispatch(PartitionKey::User(access.user_id), reply, move |c| {
                    flow(c, access)
                });
        });
    }

    /// Verifies the bearer token, then hands it to `then`. A token signed by
    /// a key this process has not loaded yet (another pod created it moments
    /// ago, with a shared token store) triggers one reload of the keys, at
    /// most once a second, and a second verification.
    fn with_access<F>(&self, bearer: Option<String>, reply: Responder, then: F)
    where
        F: FnOnce(&Engine, crate::tokens::VerifiedAccess, Responder) + Send + 'static,
    {
        match self.verify(bearer.as_deref()) {
            Ok(access) => then(self, access, reply),
            Err(AuthError::Unauthenticated(TokenProblem::Invalid))
                if !self.core.tokens.is_local_authority()
                    && bearer
                        .as_deref()
                        .is_some_and(|t| self.core.token_svc.names_unknown_key(t))
                    && self.claim_key_reload() =>
            {
                let engine = self.clone();
                self.core.handle.spawn(async move {
                    metrics::counter!(m::KEY_RELOADS_TOTAL).increment(1);
                    if let Err(e) = reload_keys(&engine.core).await {
                        tracing::warn!(error = %e, "reloading signing keys failed");
                    }
                    match engine.verify(bearer.as_deref()) {
                        Ok(access) => then(&engine, access, reply),
                        Err(e) => reply.send(Err(e)),
                    }
                });
            }
            Err(e) => reply.send(Err(e)),
        }
    }

    /// Whether this caller may reload the keys now (at most once a second).
    fn claim_key_reload(&self) -> bool {
        let now = self.core.now_ms();
        let last = self.background.key_reload_at.load(Ordering::Relaxed);
        now.saturating_sub(last) >= 1000
            && self
                .background
                .key_reload_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Submits a command and awaits the reply (tests, benchmarks, async callers).
    pub async fn call(&self, cmd: Command) -> Reply {
        let (tx, rx) = oneshot::channel();
        self.submit(
            cmd,
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

    /// Stops taking commands, waits (up to `drain`) for admitted operations,
    /// stops the shards and background tasks, and flushes the stores.
    pub async fn shutdown(&self, drain: Duration) {
        if self.core.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        let deadline = tokio::time::Instant::now() + drain;
        while self.core.shards.all().iter().any(|s| s.depth() > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.background.stop.send(true);
        let tasks = std::mem::take(
            &mut *self
                .background
                .tasks
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

/// The error for a bearer token that did not verify: with no signing key
/// loaded yet (the token store has not answered since start-up) nothing can
/// be told about it, so 503, not a 401 that would sign a client out.
fn unverified(core: &Core, problem: TokenProblem) -> AuthError {
    if problem == TokenProblem::Invalid && !core.token_svc.has_keys() {
        AuthError::Unavailable {
            retry_after_secs: 1,
        }
    } else {
        AuthError::Unauthenticated(problem)
    }
}

/// Takes a place in the hash pool for a command that will hash, or answers
/// `reply` with 503 `overloaded` at once (nothing is queued, nothing is
/// counted as an attempt).
fn reserve_hash(core: &Core, reply: Responder) -> Option<(crate::hashpool::HashSlot, Responder)> {
    match core.hash.reserve() {
        Ok(slot) => Some((slot, reply)),
        Err(e) => {
            reply.send(Err(e.into()));
            None
        }
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

/// The start-up steps that need the token store: signing keys, and the
/// refresh-token chain key (the first process stores it, every other reads it).
pub(crate) async fn token_start_up(core: &Core) -> Result<(), String> {
    maintain_keys(core).await?;
    let candidate = crate::tokens::refresh::first_secret(core.token_svc.rng())
        .map_err(|_| "system random generator failed".to_owned())?;
    let chain_key = core
        .tokens
        .refresh_chain_key(*candidate)
        .await
        .map_err(|e| format!("refresh-token chain key: {e}"))?;
    core.token_svc.set_chain_key(&chain_key);
    Ok(())
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

/// How often each store is pinged for `portcullis_store_available`.
const STORE_SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
/// Every how many pings the session count is estimated (once a minute).
const SESSIONS_SAMPLE_EVERY: u64 = 12;

/// Longest wait for a store's ping (readiness, availability gauges).
const PING_LIMIT: Duration = Duration::from_secs(2);

/// Pings both stores (user, token) and sets their availability gauges.
async fn ping_stores(core: &Core) -> (bool, bool) {
    let users = matches!(
        tokio::time::timeout(PING_LIMIT, core.users.ping()).await,
        Ok(Ok(()))
    );
    let tokens = matches!(
        tokio::time::timeout(PING_LIMIT, core.tokens.ping()).await,
        Ok(Ok(()))
    );
    metrics::gauge!(m::STORE_AVAILABLE, "store" => "user").set(f64::from(u8::from(users)));
    metrics::gauge!(m::STORE_AVAILABLE, "store" => "token").set(f64::from(u8::from(tokens)));
    core.token_store_up.store(tokens, Ordering::Release);
    if let Some(n) = core.users.nodes() {
        metrics::gauge!(m::STORE_NODES, "store" => "user", "state" => "up").set(n.up as f64);
        metrics::gauge!(m::STORE_NODES, "store" => "user", "state" => "down").set(n.down as f64);
    }
    (users, tokens)
}

/// Sets the store availability gauges and, when asked, the session estimate.
async fn sample_stores(core: &Core, sessions: bool) {
    let limit = PING_LIMIT;
    let (_, tokens) = ping_stores(core).await;
    if sessions && tokens {
        match tokio::time::timeout(limit, core.tokens.session_count_estimate()).await {
            Ok(Ok(Some(n))) => metrics::gauge!(m::SESSIONS_ACTIVE).set(n as f64),
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::debug!(error = %e, "estimating the session count failed"),
            Err(_) => tracing::debug!("estimating the session count timed out"),
        }
    }
}

async fn readiness(core: &Core) -> Reply {
    let (users, tokens) = ping_stores(core).await;
    let keys = core.token_svc.can_sign(core.now_ms());
    let closing = core.closing.load(Ordering::Acquire);
    Ok(Outcome::Readiness(
        vec![
            Check {
                name: "user_store",
                ok: users,
            },
            Check {
                name: "token_store",
                ok: tokens,
            },
            Check {
                name: "signing_keys",
                ok: keys,
            },
            Check {
                name: "accepting",
                ok: !closing,
            },
        ],
        core.users
            .nodes()
            .map(|n| ("user_store", n))
            .into_iter()
            .collect(),
    ))
}

/// Reloads the key ring from the store as it is (keys other pods created).
async fn reload_keys(core: &Core) -> Result<(), String> {
    if core.cfg.signing_keys_dir.is_some() {
        return maintain_keys(core).await;
    }
    let records = core
        .tokens
        .load_signing_keys()
        .await
        .map_err(|e| e.to_string())?;
    install_keys(core, records, core.now_ms())
}

/// Loads `records` into the token service, if one of them can sign at `now`.
fn install_keys(
    core: &Core,
    records: Vec<portcullis_storage::SigningKeyRecord>,
    now: u64,
) -> Result<(), String> {
    let ring = KeyRing::load(records, now);
    if ring.signer(now).is_none() {
        return Err("no usable signing key".into());
    }
    core.token_svc.set_keys(ring);
    Ok(())
}

/// Brings the stored keys in line with the rotation schedule and reloads the ring.
async fn maintain_keys(core: &Core) -> Result<(), String> {
    let now = core.now_ms();
    if let Some(dir) = core.cfg.signing_keys_dir.clone() {
        // Managed by the operator: read, never generate, rotate or store.
        let records = tokio::task::spawn_blocking(move || keys::load_dir(&dir, now))
            .await
            .map_err(|e| format!("reading the signing keys directory failed: {e}"))??;
        return install_keys(core, records, now);
    }
    let policy = RotationPolicy {
        interval: core.cfg.key_rotation_interval,
        publish_lead: core.cfg.key_publish_lead,
        retire_after: core.cfg.access_ttl + Duration::from_secs(300),
    };
    let mut records = core
        .tokens
        .load_signing_keys()
        .await
        .map_err(|e| e.to_string())?;
    let changes = keys::plan(&records, now, &policy, core.token_svc.rng())
        .map_err(|_| "key generation failed".to_owned())?;
    for change in changes {
        match change {
            KeyChange::Save(k) => {
                tracing::info!(kid = %k.kid, not_before_ms = k.not_before_ms, expires_at_ms = ?k.expires_at_ms, "saving signing key");
                core.tokens
                    .save_signing_key(&k)
                    .await
                    .map_err(|e| e.to_string())?;
                records.retain(|r| r.kid != k.kid);
                records.push(k);
            }
            KeyChange::Delete(kid) => {
                tracing::info!(kid = %kid, "deleting retired signing key");
                core.tokens
                    .delete_signing_key(&kid)
                    .await
                    .map_err(|e| e.to_string())?;
                records.retain(|r| r.kid != kid);
            }
        }
    }
    install_keys(core, records, now)
}
