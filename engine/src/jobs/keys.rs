//! Signing key maintenance: rotate, publish and retire on schedule, or
//! re-read the operator's key directory.

use std::sync::Arc;
use std::time::Duration;

use crate::config::EngineConfig;
use crate::core::Core;

/// How often: the directory's re-read interval, else every ten minutes.
pub(super) fn period(cfg: &EngineConfig) -> Duration {
    if cfg.signing_keys_dir.is_some() {
        cfg.keys_dir_reread.max(Duration::from_millis(10))
    } else {
        Duration::from_secs(600)
    }
}

pub(super) async fn run(core: Arc<Core>) {
    if let Err(e) = crate::signing::maintain_keys(&core).await {
        tracing::error!(error = %e, "signing key maintenance failed");
    }
}
