//! Migrations (numbering, the plan, checksums, `--print`), the keyspace
//! statement, and the settings' validation.

use ::scylla::statement::Consistency;

use crate::scylla::config::*;
use crate::scylla::*;

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
