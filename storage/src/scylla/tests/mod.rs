//! Unit tests of everything that needs no server, and the conformance suite
//! against a real ScyllaDB node when `PORTCULLIS_TEST_SCYLLA=host:port` names
//! one (each check in a fresh keyspace, dropped afterwards).
//!
//! The unit tests are in submodules by subject; the conformance suite is
//! instantiated here.

mod counting;
mod errors;
mod migrations;
mod rows;

use std::sync::Arc;

use super::fixture::Keyspace;
use super::*;
use crate::conformance::Backends;
use crate::embedded::EmbeddedStore;

/// Fresh stores for one check: a new keyspace, migrated, on the test node
/// (`fixture::test_node`).
async fn fresh() -> Backends {
    let ks = Keyspace::unmigrated("conf");
    let report = migrate(&ks.config).await.expect("migrate a fresh keyspace");
    assert_eq!(report.version, schema::current_version());
    // A second run applies nothing.
    assert!(migrate(&ks.config).await.unwrap().applied.is_empty());
    let users = ScyllaUserStore::connect(ks.config.clone())
        .await
        .expect("connect");
    let dir = tempfile::tempdir().unwrap();
    let tokens = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    Backends {
        users: Arc::new(users),
        tokens,
        guard: Box::new((ks, dir)),
    }
}

crate::conformance_suite!(@users fresh);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_an_unmigrated_keyspace() {
    let ks = Keyspace::unmigrated("absent");
    let err = ScyllaUserStore::connect(ks.config.clone())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("portcullis migrate"), "{err}");
}
