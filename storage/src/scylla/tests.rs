//! Unit tests of everything that needs no server, and the conformance suite
//! against a real ScyllaDB node when `PORTCULLIS_TEST_SCYLLA=host:port` names
//! one (each check in a fresh keyspace, dropped afterwards).

use std::sync::Arc;
use std::time::Duration;

use ::scylla::errors::{
    BrokenConnectionErrorKind, DbError, ExecutionError, RequestAttemptError, WriteType,
};
use ::scylla::policies::retry::RetryDecision;
use ::scylla::statement::Consistency;

use super::config::*;
use super::fixture::Keyspace;
use super::prepared::StatementKind;
use super::retry::{MAX_RETRIES, Session};
use super::row::UserRow;
use super::*;
use crate::StoreError;
use crate::conformance::{Backends, sample_user};
use crate::embedded::EmbeddedStore;
use crate::model::{AccountState, UserId, UserRecord};
use crate::traits::UserStore;

// ---------------------------------------------------------------- rows

fn row_of(u: &UserRecord) -> UserRow {
    UserRow {
        id: row::uuid(u.id),
        email: Some(u.email.clone()),
        password_hash: Some(u.password_hash.clone()),
        name: u.name.clone(),
        picture_url: u.picture_url.clone(),
        email_verified: Some(u.email_verified),
        mfa_enabled: Some(u.mfa_enabled),
        created_at_ms: Some(i64::try_from(u.created_at_ms).unwrap()),
        updated_at_ms: Some(i64::try_from(u.updated_at_ms).unwrap()),
        version: Some(i64::try_from(u.version).unwrap()),
        account_state: (u.account != AccountState::default())
            .then(|| crate::codec::encode_account(&u.account)),
    }
}

#[test]
fn a_user_round_trips_through_its_row_and_values() {
    let mut u = sample_user(3, "row@example.com");
    u.picture_url = Some("https://example.com/p.png".into());
    u.email_verified = true;
    u.version = 7;
    assert_eq!(row_of(&u).into_record().unwrap(), u);
    assert_eq!(
        row::insert_values(&u).unwrap().10,
        None,
        "no account state: null"
    );
    u.account.totp = Some(crate::model::TotpState {
        secret_sealed: vec![1, 2, 3],
        confirmed: true,
        last_step: Some(0),
        recovery_hashes: vec![[7; 32]; 10],
        recovery_sealed: vec![8; 40],
    });
    assert_eq!(row_of(&u).into_record().unwrap(), u);
    assert!(row::insert_values(&u).unwrap().10.is_some());
    let v = row::insert_values(&u).unwrap();
    assert_eq!(v.0, row::uuid(u.id));
    assert_eq!((v.1, v.2), (u.email.as_str(), u.password_hash.as_str()));
    assert_eq!((v.5, v.6, v.9), (true, false, 7));
    let up = row::update_values(&u, 6).unwrap();
    // SET ..., version = 7 WHERE id = ? IF version = 6 AND email = ?
    assert_eq!(
        (up.6, up.8, up.9, up.10),
        (7, row::uuid(u.id), 6, u.email.as_str())
    );
    assert_eq!(up.7, row::insert_values(&u).unwrap().10);
    let ch = row::update_email_values(&u, 6).unwrap();
    assert_eq!(
        (ch.0, ch.7, ch.9, ch.10),
        (u.email.as_str(), 7, row::uuid(u.id), 6)
    );
    assert_eq!(row::user_id(row::uuid(u.id)), u.id);
}

#[test]
fn missing_booleans_read_as_false_but_missing_essentials_are_corrupt() {
    let u = sample_user(4, "nulls@example.com");
    let mut r = row_of(&u);
    r.email_verified = None;
    r.mfa_enabled = None;
    let back = r.into_record().unwrap();
    assert!(!back.email_verified && !back.mfa_enabled);

    for broken in [
        UserRow {
            email: None,
            ..row_of(&u)
        },
        UserRow {
            password_hash: None,
            ..row_of(&u)
        },
        UserRow {
            version: None,
            ..row_of(&u)
        },
        UserRow {
            version: Some(0),
            ..row_of(&u)
        },
        UserRow {
            created_at_ms: Some(-1),
            ..row_of(&u)
        },
    ] {
        let err = broken.into_record().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}

#[test]
fn values_beyond_a_cql_bigint_are_refused_not_wrapped() {
    let mut u = sample_user(5, "big@example.com");
    u.version = u64::MAX;
    assert!(matches!(
        row::insert_values(&u),
        Err(StoreError::Backend(_))
    ));
}

// ---------------------------------------------------------------- migrations

fn test_config() -> ScyllaConfig {
    let mut c = ScyllaConfig::new(vec!["127.0.0.1:9042".into()]);
    c.keyspace = "portcullis_prod".into();
    c.replication = vec![("eu-west".into(), 3), ("us-east".into(), 3)];
    c
}

#[test]
fn migrations_are_numbered_from_one_without_gaps_and_have_statements() {
    for (i, m) in schema::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i32::try_from(i + 1).unwrap(), "{}", m.name);
        assert!(!m.statements.is_empty());
        for s in m.statements {
            // Idempotent: IF NOT EXISTS, or a column addition whose rerun
            // error `migrate` recognises.
            assert!(
                s.contains("IF NOT EXISTS") || schema::adds_column(s),
                "not idempotent: {s}"
            );
            assert!(s.contains("{ks}."), "not keyspace-qualified: {s}");
        }
    }
    assert_eq!(
        schema::current_version(),
        schema::MIGRATIONS.last().unwrap().version
    );
}

#[test]
fn a_rerun_column_addition_is_recognised_by_the_servers_message() {
    assert!(schema::adds_column(
        "ALTER TABLE {ks}.users ADD account_state blob"
    ));
    assert!(!schema::adds_column(
        "CREATE TABLE IF NOT EXISTS {ks}.t (id int PRIMARY KEY)"
    ));
    // ScyllaDB's and Cassandra's answers to adding an existing column.
    assert!(schema::is_existing_column(
        "Database returned an error: The query is syntactically correct but invalid, \
         Error message: Invalid column name account_state because it conflicts with an existing column"
    ));
    assert!(schema::is_existing_column(
        "Column with name 'account_state' already exists"
    ));
    assert!(!schema::is_existing_column("unconfigured table users"));
}

#[test]
fn plan_applies_pending_migrations_in_order_and_nothing_twice() {
    const M: &[schema::Migration] = &[
        schema::Migration {
            version: 1,
            name: "one",
            statements: &["CREATE TABLE IF NOT EXISTS {ks}.a (k int PRIMARY KEY)"],
        },
        schema::Migration {
            version: 2,
            name: "two",
            statements: &["CREATE TABLE IF NOT EXISTS {ks}.b (k int PRIMARY KEY)"],
        },
        schema::Migration {
            version: 3,
            name: "three",
            statements: &["CREATE TABLE IF NOT EXISTS {ks}.c (k int PRIMARY KEY)"],
        },
    ];
    let versions = |p: Vec<&schema::Migration>| p.iter().map(|m| m.version).collect::<Vec<_>>();
    assert_eq!(versions(schema::plan(M, &[]).unwrap()), vec![1, 2, 3]);
    let done = vec![(2, M[1].checksum()), (1, M[0].checksum())];
    assert_eq!(versions(schema::plan(M, &done).unwrap()), vec![3]);
    let all: Vec<_> = M.iter().map(|m| (m.version, m.checksum())).collect();
    assert!(
        schema::plan(M, &all).unwrap().is_empty(),
        "a second run applies nothing"
    );
}

#[test]
fn plan_refuses_an_edited_migration_and_a_newer_keyspace() {
    const M: &[schema::Migration] = &[schema::Migration {
        version: 1,
        name: "one",
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.a (k int PRIMARY KEY)"],
    }];
    let err = schema::plan(M, &[(1, "0000".into())]).unwrap_err();
    assert!(
        matches!(err, schema::PlanError::Modified { version: 1, .. }),
        "{err}"
    );
    let err = schema::plan(M, &[(1, M[0].checksum()), (2, "x".into())]).unwrap_err();
    assert_eq!(
        err,
        schema::PlanError::Unknown {
            version: 2,
            known: 1
        }
    );
    assert!(err.to_string().contains("newer Portcullis"));
}

#[test]
fn checksums_are_stable_and_change_with_the_text() {
    let m = schema::MIGRATIONS[0];
    assert_eq!(m.checksum(), m.checksum());
    assert_eq!(m.checksum().len(), 64);
    let edited = schema::Migration {
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.x (k int PRIMARY KEY)"],
        ..m
    };
    assert_ne!(edited.checksum(), m.checksum());
}

#[test]
fn migrate_print_contains_the_keyspace_tables_keys_lwt_and_ttl() {
    let cql = schema::print(&test_config());
    let must = [
        // keyspace and per-DC replication
        "CREATE KEYSPACE IF NOT EXISTS portcullis_prod WITH replication = {'class': 'NetworkTopologyStrategy', 'eu-west': 3, 'us-east': 3} AND tablets = {'enabled': false};",
        // the migration record
        "CREATE TABLE IF NOT EXISTS portcullis_prod.schema_migrations (",
        "version int PRIMARY KEY",
        // tables and their partition keys
        "CREATE TABLE IF NOT EXISTS portcullis_prod.users (",
        "id uuid PRIMARY KEY",
        "CREATE TABLE IF NOT EXISTS portcullis_prod.users_by_email (",
        "email text PRIMARY KEY",
        "user_id uuid",
        // LWT: uniqueness, optimistic concurrency, safe release
        "INSERT INTO portcullis_prod.users_by_email (email, user_id, claimed_at_ms) VALUES (?, ?, ?) IF NOT EXISTS;",
        "IF version = ? AND email = ?",
        "DELETE FROM portcullis_prod.users_by_email WHERE email = ? IF user_id = ?",
        // TTL: reservations expire, finalization removes the TTL
        "IF NOT EXISTS USING TTL ?",
        "UPDATE portcullis_prod.users_by_email USING TTL 0 SET",
        "TTL(user_id)",
        // the record of migration 1 with its checksum
        &format!(
            "VALUES (1, 'users and the email index', '{}', toTimestamp(now())) IF NOT EXISTS;",
            schema::MIGRATIONS[0].checksum()
        ),
    ];
    for m in must {
        assert!(cql.contains(m), "missing {m:?} in:\n{cql}");
    }
    assert!(!cql.contains("{ks}"), "unsubstituted keyspace");
    // The prepared statements are comments: piping the output into cqlsh
    // runs only the schema.
    for line in cql.lines().filter(|l| l.contains("?")) {
        assert!(
            line.starts_with("--"),
            "a statement with bind markers is not commented: {line}"
        );
    }
}

#[test]
fn keyspace_clause_follows_the_tablets_setting() {
    let mut c = test_config();
    c.tablets = Tablets::ServerDefault;
    assert!(!schema::keyspace_statement(&c).contains("tablets"));
    c.tablets = Tablets::On;
    assert!(schema::keyspace_statement(&c).ends_with("AND tablets = {'enabled': true}"));
}

#[test]
fn settings_are_validated() {
    let ok = test_config();
    assert!(ok.validate().is_ok());
    let bad = |f: &dyn Fn(&mut ScyllaConfig)| {
        let mut c = test_config();
        f(&mut c);
        c.validate().unwrap_err()
    };
    assert!(bad(&|c| c.keyspace = "Bad-Name".into()).contains("keyspace"));
    assert!(bad(&|c| c.keyspace = "x; DROP KEYSPACE y".into()).contains("keyspace"));
    assert!(bad(&|c| c.nodes.clear()).contains("nodes"));
    assert!(bad(&|c| c.replication = vec![("dc1".into(), 0)]).contains("at least 1"));
    assert!(bad(&|c| c.replication = vec![("dc'1".into(), 3)]).contains("not valid"));
    assert!(bad(&|c| c.username = Some("u".into())).contains("together"));
    assert!(
        bad(&|c| {
            c.tls = Some(ScyllaTls {
                ca_file: "/ca.pem".into(),
                server_name: None,
                client_cert: Some("/c.pem".into()),
                client_key: None,
            })
        })
        .contains("key")
    );
    assert_eq!(
        parse_replication("dc1:3, dc2:5").unwrap(),
        vec![("dc1".into(), 3), ("dc2".into(), 5)]
    );
    assert!(parse_replication("dc1").is_err());
    assert!(parse_replication("").is_err());
    assert_eq!(
        parse_consistency("LOCAL_QUORUM").unwrap(),
        Consistency::LocalQuorum
    );
    assert!(parse_consistency("serial").is_err());
    assert_eq!(
        parse_serial_consistency("serial").unwrap(),
        ::scylla::statement::SerialConsistency::Serial
    );
    assert_eq!(parse_tablets("default").unwrap(), Tablets::ServerDefault);
}

#[test]
fn the_password_is_not_in_debug_output() {
    let mut c = test_config();
    c.username = Some("portcullis".into());
    c.password = Some("hunter2-secret".into());
    let text = format!("{c:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("portcullis"));
}

#[test]
fn tls_settings_fail_clearly_on_a_missing_ca_file() {
    let tls = ScyllaTls {
        ca_file: "/nonexistent/ca.pem".into(),
        server_name: Some("scylla.example.com".into()),
        client_cert: None,
        client_key: None,
    };
    let err = tls::client_config(&tls).unwrap_err().to_string();
    assert!(
        err.contains("CA file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}

// ---------------------------------------------------------------- errors

fn db(e: DbError) -> ExecutionError {
    ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "msg".into()))
}

fn broken() -> RequestAttemptError {
    RequestAttemptError::BrokenConnectionError(
        BrokenConnectionErrorKind::KeepaliveTimeout("10.0.0.1".parse().unwrap()).into(),
    )
}

fn write_timeout(write_type: WriteType) -> DbError {
    DbError::WriteTimeout {
        consistency: Consistency::LocalQuorum,
        received: 1,
        required: 2,
        write_type,
    }
}

#[test]
fn a_degraded_cluster_maps_to_transient_errors() {
    let t = Duration::from_millis(2000);
    let transient = [
        db(DbError::Unavailable {
            consistency: Consistency::LocalQuorum,
            required: 2,
            alive: 1,
        }),
        db(DbError::Overloaded),
        db(DbError::IsBootstrapping),
        db(write_timeout(WriteType::Cas)),
        db(DbError::ReadTimeout {
            consistency: Consistency::LocalQuorum,
            received: 1,
            required: 2,
            data_present: false,
        }),
        ExecutionError::RequestTimeout(t),
        ExecutionError::EmptyPlan,
        ExecutionError::LastAttemptError(broken()),
    ];
    for e in transient {
        let mapped = errmap::execution(&e, t);
        assert!(mapped.is_transient(), "{e} -> {mapped:?}");
    }
    assert!(matches!(
        errmap::execution(&ExecutionError::RequestTimeout(t), t),
        StoreError::Timeout(2000)
    ));
    assert!(matches!(
        errmap::execution(&db(write_timeout(WriteType::Simple)), t),
        StoreError::Timeout(2000)
    ));
}

#[test]
fn schema_and_credential_problems_are_not_transient_and_say_what_to_do() {
    let t = Duration::from_secs(2);
    let e = errmap::execution(&db(DbError::Invalid), t);
    assert!(!e.is_transient());
    assert!(e.to_string().contains("portcullis migrate"), "{e}");
    let e = errmap::execution(&db(DbError::Unauthorized), t);
    assert!(matches!(e, StoreError::Backend(_)));
    assert!(e.to_string().contains("credentials"), "{e}");
}

#[test]
fn only_errors_after_sending_leave_the_outcome_unknown() {
    assert!(errmap::outcome_unknown(&ExecutionError::RequestTimeout(
        Duration::from_secs(1)
    )));
    assert!(errmap::outcome_unknown(&db(write_timeout(WriteType::Cas))));
    assert!(errmap::outcome_unknown(&ExecutionError::LastAttemptError(
        broken()
    )));
    assert!(!errmap::outcome_unknown(&db(DbError::Unavailable {
        consistency: Consistency::LocalQuorum,
        required: 2,
        alive: 1
    })));
    assert!(!errmap::outcome_unknown(&ExecutionError::EmptyPlan));
    assert!(!errmap::outcome_unknown(&db(DbError::Invalid)));
}

// ---------------------------------------------------------------- retries

fn attempt(e: DbError) -> RequestAttemptError {
    RequestAttemptError::DbError(e, String::new())
}

#[test]
fn non_idempotent_writes_are_never_retried_once_they_may_have_run() {
    let q = Consistency::LocalQuorum;
    let may_have_run = [
        broken(),
        attempt(write_timeout(WriteType::Cas)),
        attempt(write_timeout(WriteType::Simple)),
        attempt(DbError::Overloaded),
        attempt(DbError::ServerError),
    ];
    for e in may_have_run {
        assert_eq!(
            Session::default().decide(&e, false, q),
            RetryDecision::DontRetry,
            "{e}"
        );
    }
}

#[test]
fn what_the_coordinator_refused_is_retried_once_on_the_next_node() {
    let q = Consistency::LocalQuorum;
    let unavailable = attempt(DbError::Unavailable {
        consistency: q,
        required: 2,
        alive: 1,
    });
    for idempotent in [false, true] {
        assert_eq!(
            Session::default().decide(&unavailable, idempotent, q),
            RetryDecision::RetryNextTarget(None)
        );
        assert_eq!(
            Session::default().decide(&attempt(DbError::IsBootstrapping), idempotent, q),
            RetryDecision::RetryNextTarget(None)
        );
    }
}

#[test]
fn idempotent_statements_are_retried_after_transient_failures() {
    let q = Consistency::LocalQuorum;
    let mut s = Session::default();
    assert_eq!(
        s.decide(&broken(), true, q),
        RetryDecision::RetryNextTarget(None)
    );
    assert_eq!(
        Session::default().decide(&attempt(write_timeout(WriteType::Simple)), true, q),
        RetryDecision::RetryNextTarget(None)
    );
    // A CAS write is never retried, even when marked idempotent.
    assert_eq!(
        Session::default().decide(&attempt(write_timeout(WriteType::Cas)), true, q),
        RetryDecision::DontRetry
    );
    // A read that timed out with enough replies but no data: same node again.
    let rt = attempt(DbError::ReadTimeout {
        consistency: q,
        received: 2,
        required: 2,
        data_present: false,
    });
    assert_eq!(
        Session::default().decide(&rt, true, q),
        RetryDecision::RetrySameTarget(None)
    );
    let rt_short = attempt(DbError::ReadTimeout {
        consistency: q,
        received: 1,
        required: 2,
        data_present: false,
    });
    assert_eq!(
        Session::default().decide(&rt_short, true, q),
        RetryDecision::DontRetry
    );
}

#[test]
fn retries_per_request_are_bounded() {
    let q = Consistency::LocalQuorum;
    let mut s = Session::default();
    for _ in 0..MAX_RETRIES {
        assert_ne!(s.decide(&broken(), true, q), RetryDecision::DontRetry);
    }
    assert_eq!(s.decide(&broken(), true, q), RetryDecision::DontRetry);
    s = Session::default();
    assert_eq!(
        s.decide(&attempt(DbError::Invalid), true, q),
        RetryDecision::DontRetry
    );
    assert_eq!(
        s.decide(&attempt(DbError::SyntaxError), true, q),
        RetryDecision::DontRetry
    );
}

#[test]
fn every_statement_is_keyspace_qualified_and_writes_are_conditional_where_they_must_be() {
    for (name, cql) in statements::ALL {
        assert!(cql.contains("{ks}."), "{name}");
    }
    assert!(statements::CLAIM_EMAIL.ends_with("IF NOT EXISTS"));
    assert!(statements::RESERVE_EMAIL.contains("IF NOT EXISTS USING TTL ?"));
    assert!(statements::UPDATE_USER.ends_with("IF version = ? AND email = ?"));
    assert!(statements::UPDATE_USER_EMAIL.ends_with("IF version = ?"));
    assert!(statements::RELEASE_EMAIL.ends_with("IF user_id = ?"));
    assert!(
        statements::FINALIZE_EMAIL.contains("USING TTL 0")
            && statements::FINALIZE_EMAIL.ends_with("IF user_id = ?")
    );
}

// ---------------------------------------------------------------- conformance

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

#[test]
fn an_outbox_message_round_trips_through_its_row_and_values() {
    let m = crate::conformance::sample_mail(9, UserId([3; 16]), 1_800_000_000_000);
    let v = row::outbox_values(&m).unwrap();
    assert_eq!(v.0, schema::outbox_bucket(&m.id));
    assert!((0..schema::OUTBOX_BUCKETS).contains(&v.0));
    assert_eq!((v.1.into_bytes(), v.2), (m.id, row::uuid(m.user_id)));
    let back = row::OutboxRow {
        id: v.1,
        user_id: Some(v.2),
        created_at_ms: Some(v.3),
        due_at_ms: Some(v.4),
        attempts: Some(v.5),
        payload: Some(v.6.to_vec()),
    }
    .into_record()
    .unwrap();
    assert_eq!(back, m);
    let broken = row::OutboxRow {
        id: v.1,
        user_id: None,
        created_at_ms: None,
        due_at_ms: None,
        attempts: None,
        payload: None,
    };
    assert!(matches!(broken.into_record(), Err(StoreError::Corrupt(_))));
}

#[test]
fn outbox_statements_claim_conditionally_and_spread_over_buckets() {
    assert!(statements::CLAIM_MAIL.contains("IF claimed_until_ms < ?"));
    assert!(statements::RETRY_MAIL.contains("IF EXISTS"));
    assert!(statements::INSERT_MAIL.contains("claimed_until_ms) VALUES"));
    let buckets: std::collections::BTreeSet<i32> = (0..=255u8)
        .map(|b| {
            let mut id = [0u8; 16];
            id[15] = b;
            schema::outbox_bucket(&id)
        })
        .collect();
    assert_eq!(
        buckets.len(),
        usize::try_from(schema::OUTBOX_BUCKETS).unwrap()
    );
}

// ---------------------------------------------------------------- counting

#[test]
fn statements_are_classified_as_reads_writes_or_lwts() {
    let kind = |cql: &str| StatementKind::of(cql, false);
    for (name, cql) in statements::ALL {
        let expected = if cql.starts_with("SELECT") {
            StatementKind::Read
        } else if [
            "update_user",
            "update_user_email",
            "claim_email",
            "reserve_email",
            "finalize_email",
            "release_email",
            "claim_mail",
            "retry_mail",
        ]
        .contains(name)
        {
            StatementKind::Lwt
        } else {
            StatementKind::Write
        };
        assert_eq!(kind(cql), expected, "{name}");
    }
    assert_eq!(
        StatementKind::of("insert into t (a) values (?) if not exists", false),
        StatementKind::Lwt
    );
    // ScyllaDB's word that a statement is a transaction wins.
    assert_eq!(
        StatementKind::of(statements::INSERT_USER, true),
        StatementKind::Lwt
    );
}

/// A `metrics` recorder that keeps each counter's value by name and labels,
/// installed for one thread.
#[derive(Default)]
struct Counters(
    std::sync::Mutex<std::collections::BTreeMap<String, Arc<std::sync::atomic::AtomicU64>>>,
);

impl Counters {
    /// (reads, writes, LWTs) so far.
    fn cql(&self) -> [u64; 3] {
        let map = self.0.lock().unwrap();
        metric::KINDS.map(|k| {
            map.get(&format!("{}{{kind={k}}}", metric::STATEMENTS_TOTAL))
                .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
        })
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        metrics::Counter::from_arc(self.0.lock().unwrap().entry(name).or_default().clone())
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// The counts `e2e --phases scylla` and k8s/CAPACITY.md rest on, per store
/// call; the table at the top of `scylla/mod.rs` adds up the calls of each
/// flow. (One thread: the recorder is this thread's.)
#[tokio::test(flavor = "current_thread")]
async fn every_statement_is_counted_by_kind() {
    let counters = Counters::default();
    let _recorder = metrics::set_default_local_recorder(&counters);
    let ks = Keyspace::migrated("count").await;
    let store = ScyllaUserStore::connect(ks.config.clone()).await.unwrap();
    assert_eq!(counters.cql(), [0, 0, 0], "connecting counts nothing");
    let mut last = [0; 3];
    let mut delta = || {
        let now = counters.cql();
        let d = [now[0] - last[0], now[1] - last[1], now[2] - last[2]];
        last = now;
        d
    };
    let user = sample_user(7, "count@example.com");
    store.create_user(&user).await.unwrap();
    assert_eq!(delta(), [0, 1, 1], "create_user: row, then the email claim");
    let found = store.find_user_id_by_email(&user.email).await.unwrap();
    assert_eq!(found, Some(user.id));
    assert_eq!(delta(), [1, 0, 0], "find_user_id_by_email");
    assert!(store.get_user(user.id).await.unwrap().is_some());
    assert_eq!(delta(), [1, 0, 0], "get_user");
    let mail = crate::conformance::sample_mail(1, user.id, 0);
    let mut changed = user.clone();
    changed.version = 2;
    changed.account.outbox.push(mail.id);
    store
        .update_user_with_mail(&changed, 1, std::slice::from_ref(&mail))
        .await
        .unwrap();
    assert_eq!(
        delta(),
        [0, 1, 1],
        "update_user_with_mail: mail, then the row"
    );
    store.ping().await.unwrap();
    assert_eq!(delta(), [1, 0, 0], "ping");
}
