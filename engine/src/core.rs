//! The engine's shared core and its handle.
//!
//! [`Core`] holds what every operation uses: configuration, clock, stores,
//! hash pool, token service, read model, shard router, mailer, and the
//! shutdown signal. [`Engine`] is the cheap, cloneable handle to it that
//! the edge holds. The helpers here run an operation in its partition
//! ([`Core::dispatch`]) and time store calls.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use portcullis_storage::{StoreError, TokenStore, UserStore};
use tokio::runtime::Handle;
use tokio::sync::oneshot;

use crate::admission::PerAccount;
use crate::clock::{SharedClock, Stopwatch};
use crate::config::EngineConfig;
use crate::error::AuthError;
use crate::hashpool::{HashPool, HashSlot, PoolError};
use crate::metrics as m;
use crate::readmodel::ReadModel;
use crate::responder::{Reply, Responder};
use crate::shard::{PartitionKey, Refused, Shards};
use crate::shutdown::Shutdown;
use crate::tokens::TokenService;

/// The running engine. Cheap to clone; every clone is the same engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) core: Arc<Core>,
    /// The background jobs, awaited at shutdown.
    pub(crate) jobs: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shards", &self.core.shards.all().len())
            .field("hash_pool", &self.core.hash)
            .finish_non_exhaustive()
    }
}

/// Shared by every operation.
pub(crate) struct Core {
    pub cfg: EngineConfig,
    pub clock: SharedClock,
    pub users: Arc<dyn UserStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub hash: HashPool,
    pub token_svc: TokenService,
    pub read: ReadModel,
    pub shards: Shards,
    pub handle: Handle,
    /// Refuses new operations once it begins; stops the background jobs.
    pub shutdown: Shutdown,
    /// Delivers the outbox; holds the data keys that seal queued mail (and
    /// TOTP secrets).
    pub mailer: crate::mail::Mailer,
    /// Refuses weak new passwords.
    pub passwords: crate::passwords::PasswordPolicy,
    /// Messages in the outbox as the mailer last counted (its bound).
    pub outbox_len: AtomicU64,
    /// Logins in flight per account (at most two each).
    pub logins: Arc<PerAccount>,
    /// Whether the token store answered its last ping (every 5 s). A
    /// registration checks it before it creates the user, so that a token
    /// store known to be down does not leave behind an account whose
    /// registration answered 503.
    pub token_store_up: AtomicBool,
    /// Pings so far (each goes to its own partition).
    pub ping_counter: AtomicU64,
    /// When the signing keys were last reloaded on demand (Unix ms).
    pub key_reload_at: AtomicU64,
    /// Social-login providers.
    pub social: crate::social::Providers,
    /// The passkeys' relying party.
    pub webauthn: webauthn_rs::Webauthn,
}

fn refused(r: Refused) -> AuthError {
    match r {
        Refused::Full => {
            metrics::counter!(m::SHARD_REJECTED_TOTAL).increment(1);
            AuthError::Overloaded {
                retry_after_secs: 1,
            }
        }
        Refused::Stopped => AuthError::Unavailable {
            retry_after_secs: 1,
        },
    }
}

const UNAVAILABLE: AuthError = AuthError::Unavailable {
    retry_after_secs: 1,
};

impl Core {
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Runs `flow` in `key`'s partition and sends its reply; refuses at once
    /// (`overloaded`) when the shard is at capacity.
    pub(crate) fn dispatch<T, F, Fut>(
        self: &Arc<Self>,
        key: PartitionKey,
        reply: Responder<T>,
        flow: F,
    ) where
        T: Send + 'static,
        F: FnOnce(Arc<Core>) -> Fut + Send + 'static,
        Fut: Future<Output = Reply<T>> + Send + 'static,
    {
        if self.shutdown.is_closing() {
            reply.send(Err(UNAVAILABLE));
            return;
        }
        let admission = match self.shards.route(&key).admit() {
            Ok(a) => a,
            Err(r) => {
                reply.send(Err(refused(r)));
                return;
            }
        };
        let core = self.clone();
        // If the shard has stopped, the task is dropped with its responder,
        // which then answers `unavailable`.
        let _ = admission.send(key, Box::pin(async move { reply.send(flow(core).await) }));
    }

    /// Runs `flow` at once on the runtime, outside the partition order, when
    /// the token store is shared by several pods (Redis Cluster); otherwise
    /// exactly like [`Core::dispatch`].
    ///
    /// Only for flows whose effects are single atomic token-store operations
    /// (refresh: one compare-and-set, then at most a read and a delete). With
    /// a shared store the partition order cannot protect such a flow anyway,
    /// since other pods run the same user's operations concurrently; the
    /// store's atomicity does. Skipping the shard saves two actor hand-offs
    /// per operation. Admission is still bounded by `key`'s shard capacity,
    /// and the operation timeout still applies.
    pub(crate) fn dispatch_unordered<T, F, Fut>(
        self: &Arc<Self>,
        key: PartitionKey,
        reply: Responder<T>,
        flow: F,
    ) where
        T: Send + 'static,
        F: FnOnce(Arc<Core>) -> Fut + Send + 'static,
        Fut: Future<Output = Reply<T>> + Send + 'static,
    {
        if self.tokens.is_local_authority() {
            return self.dispatch(key, reply, flow);
        }
        if self.shutdown.is_closing() {
            reply.send(Err(UNAVAILABLE));
            return;
        }
        let permit = match self.shards.route(&key).permit() {
            Ok(p) => p,
            Err(r) => {
                reply.send(Err(refused(r)));
                return;
            }
        };
        let core = self.clone();
        let timeout = self.cfg.operation_timeout;
        self.handle.spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(timeout, flow(core)).await {
                Ok(r) => reply.send(r),
                // The responder, dropped unanswered, answers `unavailable`.
                Err(_) => {
                    tracing::error!("operation exceeded the operation timeout and was abandoned")
                }
            }
        });
    }

    /// Admits `fut` to run in `key`'s partition.
    pub(crate) fn run_in(
        &self,
        key: PartitionKey,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), AuthError> {
        if self.shutdown.is_closing() {
            return Err(UNAVAILABLE);
        }
        let shard = self.shards.route(&key);
        let admission = shard.admit().map_err(refused)?;
        admission.send(key, Box::pin(fut)).map_err(refused)
    }

    /// Runs `fut` in `key`'s partition and waits for its result. Flows may
    /// call into a user partition while holding an email partition, never the
    /// reverse (so partitions are always taken in one order: no deadlock).
    pub(crate) async fn call_in<T: Send + 'static>(
        &self,
        key: PartitionKey,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, AuthError> {
        let (tx, rx) = oneshot::channel();
        self.run_in(key, async move {
            let _ = tx.send(fut.await);
        })?;
        rx.await.map_err(|_| UNAVAILABLE)
    }

    /// Takes a place in the hash pool for an operation that will hash, or
    /// answers `reply` with 503 `overloaded` at once (nothing is queued,
    /// nothing is counted as an attempt).
    pub(crate) fn reserve_hash<T>(&self, reply: Responder<T>) -> Option<(HashSlot, Responder<T>)> {
        match self.hash.reserve() {
            Ok(slot) => Some((slot, reply)),
            Err(e) => {
                reply.send(Err(e.into()));
                None
            }
        }
    }

    /// Runs a user-store call, recording its latency and errors.
    pub(crate) async fn user_op<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        timed("user", op, f).await
    }

    /// Runs a token-store call, recording its latency and errors.
    pub(crate) async fn token_op<T>(
        &self,
        op: &'static str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        timed("token", op, f).await
    }
}

async fn timed<T>(
    store: &'static str,
    op: &'static str,
    f: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let t = Stopwatch::start();
    let r = f.await;
    metrics::histogram!(m::STORE_OP_SECONDS, "store" => store, "op" => op).record(t.elapsed_secs());
    if let Err(e) = &r {
        let kind = match e {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Timeout(_) => "timeout",
            StoreError::EmailTaken | StoreError::VersionConflict { .. } | StoreError::NotFound => {
                "conflict"
            }
            _ => "other",
        };
        metrics::counter!(m::STORE_ERRORS_TOTAL, "store" => store, "kind" => kind).increment(1);
    }
    r
}

impl From<PoolError> for AuthError {
    fn from(e: PoolError) -> AuthError {
        match e {
            PoolError::Overloaded => AuthError::Overloaded {
                retry_after_secs: 1,
            },
            PoolError::Closed => UNAVAILABLE,
            PoolError::Hash(h) => AuthError::Internal(format!("password hashing failed: {h}")),
        }
    }
}
