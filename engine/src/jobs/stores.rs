//! Samples the stores: availability and nodes every 5 s (which also tells
//! registrations and resets whether the token store is up), and the number
//! of sessions once a minute.

use std::sync::Arc;
use std::time::Duration;

use crate::core::Core;
use crate::metrics as m;
use crate::steps::health::{PING_LIMIT, ping_stores};

/// How often each store is pinged for `portcullis_store_available`.
pub(super) const PERIOD: Duration = Duration::from_secs(5);
/// Every how many pings the session count is estimated (once a minute).
const SESSIONS_SAMPLE_EVERY: u64 = 12;

/// The job, counting its rounds.
pub(super) fn job()
-> impl FnMut(Arc<Core>) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
+ Send
+ 'static {
    let mut round = 0u64;
    move |core| {
        let sessions = round.is_multiple_of(SESSIONS_SAMPLE_EVERY);
        round += 1;
        Box::pin(async move { sample_stores(&core, sessions).await })
    }
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
