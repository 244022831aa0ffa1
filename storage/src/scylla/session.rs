//! Opening a driver session with Portcullis' execution profile, and
//! connecting the store: the schema check, then every statement prepared.

use std::sync::Arc;

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;

use super::prepared::prepare_all;
use super::{ScyllaConfig, ScyllaUserStore, errmap, metric, retry, schema, tls};
use crate::{StoreError, StoreResult};

/// Opens a driver session with Portcullis' execution profile.
pub(crate) async fn open_session(cfg: &ScyllaConfig) -> StoreResult<Session> {
    cfg.validate().map_err(StoreError::Backend)?;
    let mut lbp = DefaultPolicy::builder()
        .token_aware(true)
        .permit_dc_failover(false);
    if let Some(dc) = &cfg.local_dc {
        lbp = lbp.prefer_datacenter(dc.clone());
    }
    let mut profile = ExecutionProfile::builder()
        .consistency(cfg.consistency)
        .serial_consistency(Some(cfg.serial_consistency))
        .request_timeout(Some(cfg.request_timeout))
        .load_balancing_policy(lbp.build())
        .retry_policy(Arc::new(retry::PortcullisRetryPolicy));
    if let Some(delay) = cfg.speculative_delay {
        profile = profile.speculative_execution_policy(Some(Arc::new(
            SimpleSpeculativeExecutionPolicy {
                max_retry_count: 1,
                retry_interval: delay,
            },
        )));
    }
    let mut builder = SessionBuilder::new()
        .known_nodes(&cfg.nodes)
        .connection_timeout(cfg.connect_timeout)
        .default_execution_profile_handle(profile.build().into_handle())
        .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()));
    if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
        builder = builder.user(user, password);
    }
    if let Some(tls) = &cfg.tls {
        builder = builder.tls_context(Some(tls::client_config(tls)?));
    }
    builder.build().await.map_err(|e| errmap::new_session(&e))
}

impl ScyllaUserStore {
    /// Connects, checks that the keyspace's schema is this binary's version,
    /// and prepares every statement.
    pub async fn connect(cfg: ScyllaConfig) -> StoreResult<ScyllaUserStore> {
        metric::describe();
        let session = open_session(&cfg).await?;
        check_schema(&session, &cfg).await?;
        let st = prepare_all(&session, &cfg).await?;
        Ok(ScyllaUserStore {
            session,
            cfg,
            st,
            outbox_seen: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ScyllaConfig {
        &self.cfg
    }
}

/// Reads the applied migrations (none when the keyspace or table is absent).
pub(super) async fn applied(
    session: &Session,
    cfg: &ScyllaConfig,
) -> StoreResult<Option<Vec<(i32, String)>>> {
    let cql = schema::with_keyspace(schema::APPLIED, &cfg.keyspace);
    let r = match session.query_unpaged(cql, ()).await {
        Ok(r) => r,
        Err(ExecutionError::LastAttemptError(scylla::errors::RequestAttemptError::DbError(
            scylla::errors::DbError::Invalid,
            _,
        ))) => return Ok(None),
        Err(e) => return Err(errmap::execution(&e, cfg.request_timeout)),
    };
    let rows = r
        .into_rows_result()
        .map_err(|e| StoreError::Backend(format!("ScyllaDB: schema_migrations: {e}")))?;
    let mut out = Vec::new();
    for row in rows
        .rows::<(i32, Option<String>)>()
        .map_err(|e| StoreError::Corrupt(format!("schema_migrations: {e}")))?
    {
        let (v, sum) = row.map_err(|e| StoreError::Corrupt(format!("schema_migrations: {e}")))?;
        out.push((v, sum.unwrap_or_default()));
    }
    Ok(Some(out))
}

/// Refuses a keyspace whose schema is not exactly this binary's.
async fn check_schema(session: &Session, cfg: &ScyllaConfig) -> StoreResult<()> {
    let Some(done) = applied(session, cfg).await? else {
        return Err(StoreError::Backend(format!(
            "keyspace '{}' has no Portcullis schema: run `portcullis migrate` with the same ScyllaDB settings first",
            cfg.keyspace
        )));
    };
    let pending =
        schema::plan(schema::MIGRATIONS, &done).map_err(|e| StoreError::Backend(e.to_string()))?;
    if let Some(first) = pending.first() {
        return Err(StoreError::Backend(format!(
            "keyspace '{}' lacks migration {} ({}) and later: run `portcullis migrate` first",
            cfg.keyspace, first.version, first.name
        )));
    }
    Ok(())
}
