//! The stores' health as this process sees it: pinged for readiness and
//! for the availability gauges.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::core::Core;
use crate::metrics as m;

/// Longest wait for a store's ping (readiness, availability gauges).
pub(crate) const PING_LIMIT: Duration = Duration::from_secs(2);

/// Pings both stores (user, token) and sets their availability gauges.
pub(crate) async fn ping_stores(core: &Core) -> (bool, bool) {
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
