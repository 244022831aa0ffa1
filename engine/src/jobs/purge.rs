//! Deletes expired sessions (stores that do not expire them themselves).

use std::sync::Arc;

use crate::core::Core;

pub(super) async fn run(core: Arc<Core>) {
    match core.tokens.purge_expired(core.now_ms()).await {
        Ok(n) if n > 0 => tracing::info!(removed = n, "purged expired sessions"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
    }
}
