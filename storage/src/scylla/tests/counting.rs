//! The statements' texts (keyspace-qualified, conditional where they must
//! be), their classification by kind, and the count of each kind per store
//! call.

use std::sync::Arc;

use crate::conformance::sample_user;
use crate::scylla::fixture::Keyspace;
use crate::scylla::prepared::StatementKind;
use crate::scylla::*;
use crate::traits::UserStore;

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
            "claim_identity",
            "release_identity",
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
