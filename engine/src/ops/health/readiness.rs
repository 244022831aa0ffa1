//! [`Readiness`]: whether this process can serve: both stores answer a
//! ping, a signing key can sign, and shutdown has not begun. Runs on the
//! engine's runtime, outside any partition.

use std::sync::Arc;

use portcullis_storage::NodeCount;

use crate::core::{Core, Engine};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::health::ping_stores;

/// Readiness of stores and keys.
pub struct Readiness;

/// Readiness of one dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether it is usable.
    pub ok: bool,
}

/// The readiness checks, and the database nodes of each cluster store
/// (`user_store`) as this process sees them.
#[derive(Debug, Clone)]
pub struct ReadinessReport {
    /// Each dependency and whether it is usable.
    pub checks: Vec<Check>,
    /// Cluster stores' nodes, up and down.
    pub nodes: Vec<(&'static str, NodeCount)>,
}

impl Operation for Readiness {
    type Reply = ReadinessReport;

    fn submit(self, engine: &Engine, reply: Responder<ReadinessReport>) {
        let core = engine.core.clone();
        engine
            .core
            .handle
            .spawn(async move { reply.send(run(&core).await) });
    }
}

async fn run(core: &Arc<Core>) -> Reply<ReadinessReport> {
    let (users, tokens) = ping_stores(core).await;
    let keys = core.token_svc.can_sign(core.now_ms());
    let closing = core.shutdown.is_closing();
    Ok(ReadinessReport {
        checks: vec![
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
        nodes: core
            .users
            .nodes()
            .map(|n| ("user_store", n))
            .into_iter()
            .collect(),
    })
}
