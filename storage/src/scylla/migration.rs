//! `portcullis migrate`: the keyspace created and every pending migration
//! applied and recorded; telling ScyllaDB from Apache Cassandra; dropping a
//! test keyspace.

use scylla::client::session::Session;

use super::session::{applied, open_session};
use super::{ScyllaConfig, config, errmap, schema};
use crate::{StoreError, StoreResult};

/// What `portcullis migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions applied by this run.
    pub applied: Vec<i32>,
    /// The keyspace's version afterwards.
    pub version: i32,
}

/// Which server speaks CQL on the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// ScyllaDB (it has the `system.scylla_local` table).
    Scylla,
    /// Apache Cassandra (or another CQL server without ScyllaDB's tables).
    Cassandra,
}

/// Tells ScyllaDB from Apache Cassandra by a table only ScyllaDB has.
pub async fn server_kind(session: &Session) -> StoreResult<ServerKind> {
    let r = session
        .query_unpaged(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = 'system' AND table_name = 'scylla_local'",
            (),
        )
        .await
        .map_err(|e| StoreError::Unavailable(format!("ScyllaDB: reading the server kind: {e}")))?;
    let rows = r.into_rows_result().map_err(|e| {
        StoreError::Backend(format!(
            "ScyllaDB: system_schema answered without rows: {e}"
        ))
    })?;
    Ok(if rows.rows_num() > 0 {
        ServerKind::Scylla
    } else {
        ServerKind::Cassandra
    })
}

/// Creates the keyspace if absent and applies every pending migration,
/// recording each. Safe to run again, and by two processes at once.
pub async fn migrate(cfg: &ScyllaConfig) -> StoreResult<MigrateReport> {
    let session = open_session(cfg).await?;
    let run = |cql: String| {
        let session = &session;
        async move {
            match session.query_unpaged(cql.clone(), ()).await {
                Ok(_) => {}
                // An interrupted earlier run added it already.
                Err(e)
                    if schema::adds_column(&cql) && schema::is_existing_column(&e.to_string()) =>
                {
                    tracing::info!(statement = %cql, "column exists already");
                }
                Err(e) => return Err(errmap::execution(&e, cfg.request_timeout)),
            }
            session
                .await_schema_agreement()
                .await
                .map_err(|e| StoreError::Unavailable(format!("ScyllaDB schema agreement: {e}")))?;
            Ok::<_, StoreError>(())
        }
    };
    // Tablets are a ScyllaDB keyspace option; Apache Cassandra refuses the
    // clause, so it is left out there whatever the setting.
    let kind = server_kind(&session).await?;
    let mut ks_cfg = cfg.clone();
    if kind == ServerKind::Cassandra && ks_cfg.tablets != config::Tablets::ServerDefault {
        tracing::info!("the cluster is Apache Cassandra: no tablets clause");
        ks_cfg.tablets = config::Tablets::ServerDefault;
    }
    run(schema::keyspace_statement(&ks_cfg)).await?;
    run(schema::with_keyspace(
        schema::MIGRATIONS_TABLE,
        &cfg.keyspace,
    ))
    .await?;
    let done = applied(&session, cfg).await?.unwrap_or_default();
    let pending =
        schema::plan(schema::MIGRATIONS, &done).map_err(|e| StoreError::Backend(e.to_string()))?;
    let mut record = session
        .prepare(schema::with_keyspace(schema::RECORD, &cfg.keyspace))
        .await
        .map_err(|e| errmap::prepare(&e))?;
    record.set_is_idempotent(false);
    let mut report = MigrateReport {
        applied: Vec::new(),
        version: done.iter().map(|(v, _)| *v).max().unwrap_or(0),
    };
    for m in pending {
        for s in m.render(&cfg.keyspace) {
            run(s).await?;
        }
        session
            .execute_unpaged(&record, (m.version, m.name, m.checksum()))
            .await
            .map_err(|e| errmap::execution(&e, cfg.request_timeout))?;
        tracing::info!(version = m.version, name = m.name, keyspace = %cfg.keyspace, "schema migration applied");
        report.applied.push(m.version);
        report.version = m.version;
    }
    Ok(report)
}

/// Drops a keyspace (tests).
#[cfg(any(test, feature = "conformance"))]
pub(crate) async fn drop_keyspace(cfg: &ScyllaConfig) -> StoreResult<()> {
    let session = open_session(cfg).await?;
    session
        .query_unpaged(format!("DROP KEYSPACE IF EXISTS {}", cfg.keyspace), ())
        .await
        .map_err(|e| errmap::execution(&e, cfg.request_timeout))?;
    Ok(())
}
