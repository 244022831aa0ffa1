//! Start-up with a cluster that is not there yet.
//!
//! A shared store (ScyllaDB users, Redis Cluster tokens) that cannot be
//! reached within `store_connect_timeout` at start-up does not stop the
//! server: it is replaced by a [`Late`] stand-in (every operation fails as
//! unavailable, so requests answer 503 `unavailable` with `Retry-After` and
//! `/readyz` answers 503) and connected here, in the background, with
//! backoff, for as long as the engine runs. Once the token store connects,
//! the start-up steps that need it (signing keys, the refresh-token chain
//! key) run, and the server becomes ready.

use std::sync::Arc;
use std::time::Duration;

use portcullis_storage::late::Late;
use portcullis_storage::{StoreError, StoreResult, TokenStore, UserStore};

use crate::core::Core;
use crate::shutdown::Listener;

/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A connection attempt in progress.
pub(crate) type Connecting<S> =
    std::pin::Pin<Box<dyn std::future::Future<Output = StoreResult<Arc<S>>> + Send>>;

/// Connects a store once more.
pub(crate) type Connect<S> = Box<dyn Fn() -> Connecting<S> + Send + Sync>;

/// A store still to connect: its stand-in and how to connect it.
pub(crate) struct Pending<S: ?Sized> {
    pub(crate) name: &'static str,
    pub(crate) late: Arc<Late<S>>,
    pub(crate) connect: Connect<S>,
}

/// Whatever start-up could not reach.
#[derive(Default)]
pub(crate) struct PendingStores {
    pub(crate) users: Option<Pending<dyn UserStore>>,
    pub(crate) tokens: Option<Pending<dyn TokenStore>>,
}

impl PendingStores {
    /// Whether anything is left to connect.
    pub(crate) fn is_empty(&self) -> bool {
        self.users.is_none() && self.tokens.is_none()
    }
}

/// Connects until it works (or the engine stops), then installs the store.
/// Every failure is retried: a cluster that answers but refuses (a keyspace
/// not migrated yet, say) may be fixed while the server waits.
async fn connect<S: ?Sized>(p: Pending<S>, mut stop: Listener) -> bool {
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 0u64;
    loop {
        if stop.is_shutdown() {
            return false;
        }
        attempt += 1;
        match (p.connect)().await {
            Ok(s) => {
                p.late.install(s);
                tracing::info!(store = p.name, attempt, "store connected");
                return true;
            }
            Err(e) => log_failure(p.name, &e, attempt, backoff),
        }
        if !stop.sleep(backoff).await {
            return false;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn log_failure(store: &'static str, e: &StoreError, attempt: u64, backoff: Duration) {
    let retry_in_ms = crate::clock::ms(backoff);
    if e.is_transient() {
        tracing::warn!(store, error = %e, attempt, retry_in_ms, "store not reachable yet; retrying");
    } else {
        tracing::error!(store, error = %e, attempt, retry_in_ms, "store refuses the connection; retrying");
    }
}

/// Connects what start-up could not, then finishes the start-up steps that
/// needed the token store.
pub(crate) async fn run(core: Arc<Core>, pending: PendingStores, stop: Listener) {
    let PendingStores { users, tokens } = pending;
    let users_up = async {
        match users {
            Some(p) => connect(p, stop.clone()).await,
            None => true,
        }
    };
    let tokens_up = async {
        match tokens {
            Some(p) => {
                let up = connect(p, stop.clone()).await && token_setup(&core, stop.clone()).await;
                if up {
                    core.token_store_up
                        .store(true, std::sync::atomic::Ordering::Release);
                }
                up
            }
            None => true,
        }
    };
    let (u, t) = tokio::join!(users_up, tokens_up);
    if u && t {
        tracing::info!("every store is connected");
    }
}

/// Signing keys and the refresh-token chain key, once the token store is
/// there; retried until they work.
async fn token_setup(core: &Arc<Core>, mut stop: Listener) -> bool {
    let mut backoff = Duration::from_millis(250);
    loop {
        match crate::signing::start_up(core).await {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, "signing keys or chain key not set up yet; retrying")
            }
        }
        if !stop.sleep(backoff).await {
            return false;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
