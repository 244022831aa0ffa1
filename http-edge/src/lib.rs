//! Portcullis HTTP edge: a thin HTTP/1.1 server on `may` coroutines that
//! parses and validates requests, applies per-IP limits, and hands each one
//! to the engine as an [`Operation`](portcullis_engine::Operation) through
//! the [`bridge`]. It never touches storage.
//!
//! [`serve`] takes already-bound listeners and a running engine, so tests
//! start the real server in-process on port 0.

#![deny(unsafe_code)]

pub mod admin;
pub mod api;
pub mod app;
pub mod bridge;
pub mod clientip;
pub mod config;
pub mod dto;
mod json;
pub mod openapi;
pub mod problem;
pub mod ratelimit;
mod requestid;
pub mod router;
pub mod server;
pub mod telemetry;

/// What the fuzz targets (`fuzz/`, a cargo-fuzz package outside the
/// workspace) reach that is otherwise private: the strict JSON body reader.
/// Not an API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::json::{Field, Kind, parse_bytes};
}

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use portcullis_engine::Engine;

use crate::admin::Admin;
use crate::app::{App, Documents};
use crate::bridge::Bridge;
use crate::config::EdgeConfig;
use crate::ratelimit::IpLimits;
use crate::router::Api;
use crate::server::{Server, ServerConfig};

/// The running API and admin servers.
pub struct Running {
    api: Arc<Server>,
    admin: Arc<Server>,
    engine: Engine,
    sweeper: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("api", &self.api.local_addr())
            .field("admin", &self.admin.local_addr())
            .finish_non_exhaustive()
    }
}

/// Serves the API on `api` and the admin endpoints on `admin`.
pub fn serve(
    engine: Engine,
    api: TcpListener,
    admin: TcpListener,
    cfg: &EdgeConfig,
    metrics: Option<PrometheusHandle>,
) -> std::io::Result<Running> {
    let bridge = Bridge::new(engine.clone());
    let docs = Documents {
        openapi: openapi::document().into(),
        discovery: serde_json::to_vec(
            &api::discovery::openid_configuration::Discovery::for_issuer(&cfg.issuer),
        )
        .unwrap_or_default()
        .into(),
    };
    let app = Arc::new(Api::new(App::new(
        bridge.clone(),
        IpLimits::with_introspection(cfg.ip_rate_limit, cfg.introspection_rate_limit),
        cfg.trusted_proxies.clone(),
        cfg.forwarded_header,
        docs,
    )));
    let clock = engine.clock().clone();
    let api = Server::start(api, app.clone(), cfg.server.clone(), clock.clone(), "api")?;
    let admin_cfg = ServerConfig {
        max_connections: 256,
        ..ServerConfig::default()
    };
    let admin = Server::start(
        admin,
        Arc::new(Admin::new(bridge, metrics.clone())),
        admin_cfg,
        clock,
        "admin",
    )?;
    // Upkeep runs until the engine's shutdown begins.
    let stop = engine.shutdown_listener();
    let sweeper = std::thread::Builder::new()
        .name("portcullis-sweeper".into())
        .spawn(move || {
            let mut ticks = 0u64;
            while !stop.is_shutdown() {
                std::thread::park_timeout(Duration::from_secs(1));
                ticks += 1;
                if ticks.is_multiple_of(5)
                    && let Some(m) = &metrics
                {
                    m.run_upkeep();
                }
                if ticks.is_multiple_of(60) {
                    app.app().sweep();
                }
            }
        })?;
    Ok(Running {
        api: Arc::new(api),
        admin: Arc::new(admin),
        engine,
        sweeper: Some(sweeper),
    })
}

impl Running {
    /// The API's bound address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr()
    }

    /// The admin listener's bound address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// Graceful stop: stop accepting, let in-flight requests finish (up to
    /// `drain`), stop the engine and flush its stores.
    pub async fn shutdown(mut self, drain: Duration) {
        let (api, admin) = (self.api.clone(), self.admin.clone());
        // The drain polls and sleeps: keep it off the async workers.
        let drained = tokio::task::spawn_blocking(move || {
            api.shutdown(drain);
            admin.shutdown(Duration::ZERO);
        })
        .await;
        if drained.is_err() {
            tracing::error!("draining the HTTP servers failed");
        }
        self.engine.shutdown(drain).await;
        if let Some(t) = self.sweeper.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
