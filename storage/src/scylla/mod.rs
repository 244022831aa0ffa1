//! The ScyllaDB user store: users shared by every Portcullis pod.
//!
//! **Tables** (see [`schema`]): `users_by_email` (normalized email -> user
//! id; the email partition) and `users` (user id -> credential, profile, MFA,
//! status; the user partition), partitioned the way the shard actors
//! partition users. A login is three single-partition reads.
//!
//! Statements per operation, engine flow included. The rows marked
//! *measured* are what `e2e --phases scylla` counted on
//! `portcullis_cql_statements_total` (see [`metric`] and k8s/CAPACITY.md);
//! the others follow from the code. Every `outbox` write is a message the
//! mailer delivers later, with the statements of its row.
//!
//! | operation | reads | plain writes | LWTs |
//! | --- | --- | --- | --- |
//! | register (*measured*) | 1 (`users_by_email`: the engine's check that the email is free) | 1 (`users`) | 1 (`users_by_email`, `IF NOT EXISTS`) |
//! | login (*measured*) | 3 (`users_by_email`, `users`, `users` again: the credentials-epoch check once the session is open) | 0 | 0 (+1 read, +1 LWT when the hash is upgraded) |
//! | refresh (*measured*) | 0 | 0 | 0 |
//! | `me` (*measured*; the read model is off with a shared token store) | 1 (`users`) | 0 | 0 |
//! | password change (*measured*) | 1 | 1 (`outbox`: the notice) | 1 (`users`, `IF version`) |
//! | delivering a queued message (mailer, *measured*) | 2 (`users`: vouched?, then the record update's read) | 1 (`outbox` delete) | 2 (`outbox` claim, `users` record `IF version`) |
//! | profile update; verify email (confirming) | 1 | 0 | 1 (`users`, `IF version`) |
//! | verify email or email change (asking: a link is mailed) | 1 | 1 (`outbox`) | 1 (`users`, `IF version`) |
//! | email change (confirming) | 2 (the flow's, then the store's version check) | 1 (`outbox`: the notice) | 4 (reserve, record, finalize, release) |
//! | the mailer's poll, every second per pod | 16 (`outbox`, every bucket) | 0 | 0 |
//!
//! A read at serial consistency (settling an unknown LWT outcome) counts as
//! a read, though the server runs a Paxos round for it.
//!
//! **Uniqueness.** A new user's row is written first, then its email is
//! claimed with `INSERT ... IF NOT EXISTS`; only the claim makes the user
//! findable, so a failed registration leaves no visible trace (its row is
//! deleted when the claim is known to have failed). An email change reserves
//! the new email (`IF NOT EXISTS USING TTL`), updates the row (`IF version`),
//! makes the reservation permanent (`USING TTL 0 ... IF user_id`), then
//! releases the old email (`DELETE ... IF user_id`). A lookup that meets a
//! reservation finishes it when the row already carries that email (the
//! change was interrupted after its decisive step) and ignores it otherwise;
//! a permanent entry whose user now has another email (an interrupted
//! release) is released by the next claim of that email.
//!
//! **Unknown outcomes.** A lightweight transaction that timed out may still
//! have been applied: the store reads the partition at serial consistency
//! (which completes any Paxos round in flight) to learn what happened,
//! instead of retrying blindly.
//!
//! **Requests.** Statements are prepared once at start-up; routing is token-
//! and shard-aware, restricted to the local datacenter; reads and plain
//! writes use `LOCAL_QUORUM`, transactions `LOCAL_SERIAL` (both
//! configurable); every request has a client-side timeout; idempotent reads
//! may be sent speculatively to a second replica; see [`retry`] for what is
//! retried.

pub mod config;
mod errmap;
#[cfg(any(test, feature = "conformance"))]
pub mod fixture;
pub mod retry;
mod row;
pub mod schema;
mod statements;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use async_trait::async_trait;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::errors::ExecutionError;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::policies::speculative_execution::SimpleSpeculativeExecutionPolicy;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlValue, Row};
use uuid::Uuid;

pub use config::{ScyllaConfig, ScyllaTls, Tablets};

use crate::model::{OutboxRecord, UserId, UserRecord};
use crate::traits::UserStore;
use crate::{StoreError, StoreResult};
use row::{UserRow, to_bigint, uuid};

/// The ScyllaDB user store.
pub struct ScyllaUserStore {
    session: Session,
    cfg: ScyllaConfig,
    st: Statements,
    /// Messages the last outbox scan saw (the mailer scans every poll).
    outbox_seen: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ScyllaUserStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaUserStore")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Metric names of this backend.
pub mod metric {
    /// Counter: CQL statements the store sent, by `kind`: `read` (a
    /// `SELECT`, serial reads included), `write` (a plain insert, update or
    /// delete) or `lwt` (a conditional statement: a Paxos round). Speculative
    /// and retried attempts of one statement count once.
    pub const STATEMENTS_TOTAL: &str = "portcullis_cql_statements_total";

    /// The values of the `kind` label.
    pub const KINDS: [&str; 3] = ["read", "write", "lwt"];

    /// Gives each metric its help text, and creates the counters at zero.
    pub(crate) fn describe() {
        metrics::describe_counter!(
            STATEMENTS_TOTAL,
            "CQL statements sent to ScyllaDB by kind (read, write, lwt)"
        );
        for kind in KINDS {
            metrics::counter!(STATEMENTS_TOTAL, "kind" => kind).increment(0);
        }
    }
}

/// What one statement asks of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementKind {
    /// A `SELECT` (at any consistency: a serial read counts here).
    Read,
    /// An insert, update or delete without a condition.
    Write,
    /// A conditional insert, update or delete (`IF ...`): a Paxos round.
    Lwt,
}

impl StatementKind {
    /// Classifies a statement by its text, or by the server's word that it
    /// is a lightweight transaction (ScyllaDB says so when preparing it).
    pub(crate) fn of(cql: &str, confirmed_lwt: bool) -> StatementKind {
        let mut words = cql.split_whitespace();
        if words
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("SELECT"))
        {
            StatementKind::Read
        } else if confirmed_lwt || words.any(|w| w.eq_ignore_ascii_case("IF")) {
            StatementKind::Lwt
        } else {
            StatementKind::Write
        }
    }

    /// The `kind` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            StatementKind::Read => "read",
            StatementKind::Write => "write",
            StatementKind::Lwt => "lwt",
        }
    }
}

/// A prepared statement and the counter of its kind, looked up once.
struct Stmt {
    st: PreparedStatement,
    count: metrics::Counter,
}

impl Stmt {
    fn new(st: PreparedStatement) -> Stmt {
        let kind = StatementKind::of(st.get_statement(), st.is_confirmed_lwt());
        let count = metrics::counter!(metric::STATEMENTS_TOTAL, "kind" => kind.label());
        Stmt { st, count }
    }
}

struct Statements {
    insert_user: Stmt,
    delete_user: Stmt,
    get_user: Stmt,
    get_user_serial: Stmt,
    update_user: Stmt,
    update_user_email: Stmt,
    claim_email: Stmt,
    reserve_email: Stmt,
    finalize_email: Stmt,
    release_email: Stmt,
    find_email: Stmt,
    find_email_serial: Stmt,
    ping: Stmt,
    insert_mail: Stmt,
    bucket_mail: Stmt,
    claim_mail: Stmt,
    retry_mail: Stmt,
    delete_mail: Stmt,
    scan_users_first: Stmt,
    scan_users_after: Stmt,
}

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

mod tls;

/// The outcome of a lightweight transaction: whether it applied, and the
/// current values of the columns it was conditioned on (when it did not).
#[derive(Debug, Default)]
struct Lwt {
    applied: bool,
    columns: Vec<(String, Option<CqlValue>)>,
}

impl Lwt {
    fn column(&self, name: &str) -> Option<&CqlValue> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_ref())
    }

    fn uuid(&self, name: &str) -> Option<Uuid> {
        match self.column(name) {
            Some(CqlValue::Uuid(u)) => Some(*u),
            _ => None,
        }
    }

    fn bigint(&self, name: &str) -> Option<i64> {
        match self.column(name) {
            Some(CqlValue::BigInt(v)) => Some(*v),
            _ => None,
        }
    }

    fn text(&self, name: &str) -> Option<&str> {
        match self.column(name) {
            Some(CqlValue::Text(v) | CqlValue::Ascii(v)) => Some(v),
            _ => None,
        }
    }
}

fn lwt(result: QueryResult) -> StoreResult<Lwt> {
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::Backend(format!("ScyllaDB: LWT answered without rows: {e}")))?;
    let names: Vec<String> = rows
        .column_specs()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let row: Option<Row> = rows
        .maybe_first_row::<Row>()
        .map_err(|e| StoreError::Backend(format!("ScyllaDB: unreadable LWT answer: {e}")))?;
    let Some(row) = row else {
        return Err(StoreError::Backend("ScyllaDB: empty LWT answer".into()));
    };
    let columns: Vec<(String, Option<CqlValue>)> = names.into_iter().zip(row.columns).collect();
    let applied = matches!(
        columns.iter().find(|(n, _)| n == "[applied]"),
        Some((_, Some(CqlValue::Boolean(true))))
    );
    Ok(Lwt { applied, columns })
}

/// What a lookup of an email found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmailEntry {
    /// Nothing.
    Free,
    /// The user's email.
    Claimed(Uuid),
    /// Reserved for an email change of this user, not yet final.
    Reserved(Uuid),
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

    /// Runs one statement: every statement of the store goes through here,
    /// and is counted by kind (`portcullis_cql_statements_total`).
    async fn exec(
        &self,
        st: &Stmt,
        values: impl SerializeRow,
    ) -> Result<QueryResult, ExecutionError> {
        st.count.increment(1);
        self.session.execute_unpaged(&st.st, values).await
    }

    fn err(&self, e: &ExecutionError) -> StoreError {
        errmap::execution(e, self.cfg.request_timeout)
    }

    async fn lwt(&self, st: &Stmt, values: impl SerializeRow) -> Result<Lwt, LwtError> {
        match self.exec(st, values).await {
            Ok(r) => lwt(r).map_err(LwtError::Known),
            Err(e) if errmap::outcome_unknown(&e) => Err(LwtError::Unknown(self.err(&e))),
            Err(e) => Err(LwtError::Known(self.err(&e))),
        }
    }

    /// Queues `mail` before the row that vouches for it is written.
    async fn queue_mail(&self, mail: &[OutboxRecord]) -> StoreResult<()> {
        for m in mail {
            self.exec(&self.st.insert_mail, row::outbox_values(m)?)
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(())
    }

    /// After the row write: a definite failure withdraws the queued mail
    /// (best effort: unvouched mail is never sent anyway); success, or an
    /// outcome still unknown, leaves it to the mailer.
    async fn settle_mail(&self, mail: &[OutboxRecord], result: &StoreResult<()>) {
        let definite = matches!(
            result,
            Err(StoreError::VersionConflict { .. }
                | StoreError::NotFound
                | StoreError::EmailTaken
                | StoreError::Backend(_))
        );
        if !definite {
            return;
        }
        for m in mail {
            if let Err(e) = self.delete_mail(m).await {
                tracing::debug!(error = %e, "withdrawing unvouched mail failed; the mailer drops it");
            }
        }
    }

    async fn update_row(&self, user: &UserRecord, expected_version: u64) -> StoreResult<()> {
        match self
            .lwt(
                &self.st.update_user,
                row::update_values(user, expected_version)?,
            )
            .await
        {
            Ok(l) if l.applied => Ok(()),
            Ok(l) => match (l.bigint("version"), l.text("email")) {
                (None, _) => Err(StoreError::NotFound),
                (Some(v), Some(email))
                    if v == to_bigint("version", expected_version)? && email != user.email =>
                {
                    Err(StoreError::Backend(
                        "update_user cannot change the email address".into(),
                    ))
                }
                _ => Err(StoreError::VersionConflict {
                    expected: expected_version,
                }),
            },
            Err(LwtError::Known(e)) => Err(e),
            Err(LwtError::Unknown(e)) => self.resolve_update(user, e).await,
        }
    }

    async fn change_row_email(&self, user: &UserRecord, expected_version: u64) -> StoreResult<()> {
        let id = uuid(user.id);
        let Some(stored) = self.read_user(&self.st.get_user, user.id).await? else {
            return Err(StoreError::NotFound);
        };
        if stored.version != expected_version {
            return Err(StoreError::VersionConflict {
                expected: expected_version,
            });
        }
        if stored.email == user.email {
            return self.update_row(user, expected_version).await;
        }
        let now = user.updated_at_ms;
        let ttl = i32::try_from(self.cfg.reservation_ttl.as_secs()).unwrap_or(i32::MAX);
        // 1. Reserve the new email; nobody else can take it from here on.
        if !self.claim(&user.email, id, now, Some(ttl)).await? {
            return Err(StoreError::EmailTaken);
        }
        // 2. The decisive step: the row takes the new email.
        let updated = match self
            .lwt(
                &self.st.update_user_email,
                row::update_email_values(user, expected_version)?,
            )
            .await
        {
            Ok(l) if l.applied => Ok(()),
            Ok(l) => Err(match l.bigint("version") {
                None => StoreError::NotFound,
                Some(_) => StoreError::VersionConflict {
                    expected: expected_version,
                },
            }),
            Err(LwtError::Known(e)) => Err(e),
            Err(LwtError::Unknown(e)) => self.resolve_update(user, e).await,
        };
        if let Err(e) = updated {
            // The reservation expires by itself if this release fails.
            if let Err(r) = self
                .lwt(&self.st.release_email, (user.email.as_str(), id))
                .await
            {
                tracing::warn!(user_id = %id, error = %r.into_store(), "could not release an email reservation; it expires by itself");
            }
            return Err(e);
        }
        // 3. The reservation becomes permanent; 4. the old email is released.
        // Both are repaired later if they fail now (see the module docs), so
        // the change stands.
        if let Err(e) = self.finalize(&user.email, id, now).await {
            tracing::warn!(user_id = %id, error = %e, "email changed; making the new index entry permanent failed, the next lookup finishes it");
        }
        if let Err(e) = self
            .lwt(&self.st.release_email, (stored.email.as_str(), id))
            .await
        {
            tracing::warn!(user_id = %id, error = %e.into_store(), "email changed; releasing the old email failed, the next claim of it releases it");
        }
        Ok(())
    }

    async fn read_user(&self, st: &Stmt, id: UserId) -> StoreResult<Option<UserRecord>> {
        let r = self.exec(st, (uuid(id),)).await.map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!("ScyllaDB: users answered without rows: {e}"))
        })?;
        rows.maybe_first_row::<UserRow>()
            .map_err(|e| StoreError::Corrupt(format!("unreadable users row: {e}")))?
            .map(UserRow::into_record)
            .transpose()
    }

    async fn read_email(&self, st: &Stmt, email: &str) -> StoreResult<EmailEntry> {
        let r = self.exec(st, (email,)).await.map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!(
                "ScyllaDB: users_by_email answered without rows: {e}"
            ))
        })?;
        let row: Option<(Option<Uuid>, Option<i32>)> = rows
            .maybe_first_row()
            .map_err(|e| StoreError::Corrupt(format!("unreadable users_by_email row: {e}")))?;
        Ok(match row {
            None | Some((None, _)) => EmailEntry::Free,
            Some((Some(id), None)) => EmailEntry::Claimed(id),
            Some((Some(id), Some(_))) => EmailEntry::Reserved(id),
        })
    }

    /// Claims `email` for `id` (`ttl`: a reservation), resolving an unknown
    /// outcome by a serial read and releasing a stale entry once. Returns
    /// whether `id` now holds the email.
    async fn claim(
        &self,
        email: &str,
        id: Uuid,
        now_ms: u64,
        ttl: Option<i32>,
    ) -> StoreResult<bool> {
        let claimed_at = to_bigint("claimed_at_ms", now_ms)?;
        for attempt in 0..2 {
            let outcome = match ttl {
                None => {
                    self.lwt(&self.st.claim_email, (email, id, claimed_at))
                        .await
                }
                Some(t) => {
                    self.lwt(&self.st.reserve_email, (email, id, claimed_at, t))
                        .await
                }
            };
            let owner = match outcome {
                Ok(l) if l.applied => return Ok(true),
                Ok(l) => l.uuid("user_id"),
                Err(LwtError::Known(e)) => return Err(e),
                Err(LwtError::Unknown(e)) => {
                    match self.read_email(&self.st.find_email_serial, email).await {
                        Ok(EmailEntry::Claimed(o) | EmailEntry::Reserved(o)) if o == id => {
                            return Ok(true);
                        }
                        Ok(EmailEntry::Claimed(o) | EmailEntry::Reserved(o)) => Some(o),
                        // Not applied, and a serial read completes any round
                        // in flight: it never will be.
                        Ok(EmailEntry::Free) => return Err(e),
                        Err(_) => return Err(e),
                    }
                }
            };
            match owner {
                Some(o) if o == id => return Ok(true),
                Some(o) if attempt == 0 && self.release_if_stale(email, o).await? => continue,
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Releases `email`'s entry if it is a left-over: permanent, and its user
    /// now has another email (an email change whose last step failed).
    async fn release_if_stale(&self, email: &str, owner: Uuid) -> StoreResult<bool> {
        if self.read_email(&self.st.find_email_serial, email).await? != EmailEntry::Claimed(owner) {
            return Ok(false);
        }
        match self
            .read_user(&self.st.get_user_serial, row::user_id(owner))
            .await?
        {
            Some(u) if u.email != email => {}
            _ => return Ok(false),
        }
        match self.lwt(&self.st.release_email, (email, owner)).await {
            Ok(l) => {
                if l.applied {
                    tracing::warn!(
                        user_id = %owner,
                        "released an email index entry left over by an interrupted email change"
                    );
                }
                Ok(l.applied)
            }
            Err(e) => Err(e.into_store()),
        }
    }

    /// Best-effort removal of a user row whose email claim failed.
    async fn forget_row(&self, id: Uuid) {
        if let Err(e) = self.exec(&self.st.delete_user, (id,)).await {
            tracing::warn!(user_id = %id, error = %self.err(&e), "could not delete the row of a user whose email claim failed (it is unreachable)");
        }
    }

    /// An LWT update of the `users` row whose outcome is unknown: applied iff
    /// the row now is `user` (read at serial consistency).
    async fn resolve_update(&self, user: &UserRecord, e: StoreError) -> StoreResult<()> {
        match self.read_user(&self.st.get_user_serial, user.id).await {
            Ok(Some(now)) if &now == user => Ok(()),
            _ => Err(e),
        }
    }

    async fn finalize(&self, email: &str, id: Uuid, now_ms: u64) -> StoreResult<bool> {
        let claimed_at = to_bigint("claimed_at_ms", now_ms)?;
        match self
            .lwt(&self.st.finalize_email, (id, claimed_at, email, id))
            .await
        {
            Ok(l) => Ok(l.applied),
            Err(e) => Err(e.into_store()),
        }
    }
}

enum LwtError {
    /// Certainly not applied.
    Known(StoreError),
    /// May have been applied.
    Unknown(StoreError),
}

impl LwtError {
    /// The error, whatever the outcome.
    fn into_store(self) -> StoreError {
        match self {
            LwtError::Known(e) | LwtError::Unknown(e) => e,
        }
    }
}

#[async_trait]
impl UserStore for ScyllaUserStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let id = uuid(user.id);
        self.exec(&self.st.insert_user, row::insert_values(user)?)
            .await
            .map_err(|e| self.err(&e))?;
        match self.claim(&user.email, id, user.created_at_ms, None).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.forget_row(id).await;
                Err(StoreError::EmailTaken)
            }
            // Unknown whether the claim applied: the row must stay, or a
            // claim could point at nothing.
            Err(e) => Err(e),
        }
    }

    async fn find_user_id_by_email(&self, email: &str) -> StoreResult<Option<UserId>> {
        match self.read_email(&self.st.find_email, email).await? {
            EmailEntry::Free => Ok(None),
            EmailEntry::Claimed(id) => Ok(Some(row::user_id(id))),
            EmailEntry::Reserved(id) => {
                // An email change in progress, or one interrupted after the
                // row took the email: only the latter makes it the user's.
                let user = self.read_user(&self.st.get_user, row::user_id(id)).await?;
                match user {
                    Some(u) if u.email == email => {
                        if let Err(e) = self.finalize(email, id, u.updated_at_ms).await {
                            tracing::warn!(user_id = %id, error = %e, "could not finish an interrupted email change; the next lookup retries");
                        }
                        Ok(Some(u.id))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.read_user(&self.st.get_user, id).await
    }

    async fn update_user_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.queue_mail(mail).await?;
        let r = self.update_row(user, expected_version).await;
        self.settle_mail(mail, &r).await;
        r
    }

    async fn change_email_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.queue_mail(mail).await?;
        let r = self.change_row_email(user, expected_version).await;
        self.settle_mail(mail, &r).await;
        r
    }

    async fn due_mail(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<OutboxRecord>> {
        let mut due = Vec::new();
        let mut seen = 0u64;
        for bucket in 0..schema::OUTBOX_BUCKETS {
            let r = self
                .exec(&self.st.bucket_mail, (bucket,))
                .await
                .map_err(|e| self.err(&e))?;
            let rows = r.into_rows_result().map_err(|e| {
                StoreError::Backend(format!("ScyllaDB: outbox answered without rows: {e}"))
            })?;
            for row in rows
                .rows::<row::OutboxRow>()
                .map_err(|e| StoreError::Corrupt(format!("unreadable outbox row: {e}")))?
            {
                let m = row
                    .map_err(|e| StoreError::Corrupt(format!("unreadable outbox row: {e}")))?
                    .into_record()?;
                seen += 1;
                if m.due_at_ms <= now_ms {
                    due.push(m);
                }
            }
        }
        self.outbox_seen
            .store(seen, std::sync::atomic::Ordering::Relaxed);
        due.sort_by_key(|m| m.id);
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_mail(
        &self,
        mail: &OutboxRecord,
        now_ms: u64,
        until_ms: u64,
    ) -> StoreResult<bool> {
        let values = (
            to_bigint("claimed_until_ms", until_ms)?,
            schema::outbox_bucket(&mail.id),
            Uuid::from_bytes(mail.id),
            to_bigint("now_ms", now_ms)?,
        );
        // An unknown outcome is an error: the caller does not deliver, and
        // a claim that did apply expires by itself.
        self.lwt(&self.st.claim_mail, values)
            .await
            .map(|l| l.applied)
            .map_err(LwtError::into_store)
    }

    async fn retry_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        let values = (
            to_bigint("due_at_ms", mail.due_at_ms)?,
            i32::try_from(mail.attempts).unwrap_or(i32::MAX),
            schema::outbox_bucket(&mail.id),
            Uuid::from_bytes(mail.id),
        );
        self.lwt(&self.st.retry_mail, values)
            .await
            .map(|_| ())
            .map_err(LwtError::into_store)
    }

    async fn delete_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        self.exec(
            &self.st.delete_mail,
            (schema::outbox_bucket(&mail.id), Uuid::from_bytes(mail.id)),
        )
        .await
        .map(|_| ())
        .map_err(|e| self.err(&e))
    }

    async fn outbox_len(&self) -> StoreResult<Option<u64>> {
        // Counted by the mailer's last scan of every bucket (each poll).
        Ok(Some(
            self.outbox_seen.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    async fn scan_users(
        &self,
        after: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let r = match after {
            None => self.exec(&self.st.scan_users_first, (limit,)).await,
            Some(id) => {
                self.exec(&self.st.scan_users_after, (uuid(id), limit))
                    .await
            }
        }
        .map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!("ScyllaDB: users answered without rows: {e}"))
        })?;
        rows.rows::<UserRow>()
            .map_err(|e| StoreError::Corrupt(format!("unreadable users row: {e}")))?
            .map(|row| {
                row.map_err(|e| StoreError::Corrupt(format!("unreadable users row: {e}")))?
                    .into_record()
            })
            .collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.exec(&self.st.ping, ())
            .await
            .map(|_| ())
            .map_err(|e| self.err(&e))
    }

    fn nodes(&self) -> Option<crate::model::NodeCount> {
        let state = self.session.get_cluster_state();
        let local = self.cfg.local_dc.as_deref();
        let (mut up, mut down) = (0, 0);
        for node in state.get_nodes_info() {
            if local.is_some() && node.datacenter.as_deref() != local {
                continue;
            }
            if node.is_connected() {
                up += 1;
            } else {
                down += 1;
            }
        }
        Some(crate::model::NodeCount { up, down })
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every acknowledged write is already on a quorum of replicas.
        Ok(())
    }
}

async fn prepare_all(session: &Session, cfg: &ScyllaConfig) -> StoreResult<Statements> {
    let ks = &cfg.keyspace;
    let prepare = |cql: &'static str, idempotent: bool| {
        let text = schema::with_keyspace(cql, ks);
        async move {
            let mut st = session
                .prepare(text)
                .await
                .map_err(|e| errmap::prepare(&e))?;
            st.set_is_idempotent(idempotent);
            Ok::<_, StoreError>(st)
        }
    };
    let serial = match cfg.serial_consistency {
        SerialConsistency::Serial => Consistency::Serial,
        SerialConsistency::LocalSerial => Consistency::LocalSerial,
    };
    let mut get_user_serial = prepare(statements::GET_USER, true).await?;
    get_user_serial.set_consistency(serial);
    let mut find_email_serial = prepare(statements::FIND_EMAIL, true).await?;
    find_email_serial.set_consistency(serial);
    Ok(Statements {
        insert_user: Stmt::new(prepare(statements::INSERT_USER, true).await?),
        delete_user: Stmt::new(prepare(statements::DELETE_USER, true).await?),
        get_user: Stmt::new(prepare(statements::GET_USER, true).await?),
        get_user_serial: Stmt::new(get_user_serial),
        update_user: Stmt::new(prepare(statements::UPDATE_USER, false).await?),
        update_user_email: Stmt::new(prepare(statements::UPDATE_USER_EMAIL, false).await?),
        claim_email: Stmt::new(prepare(statements::CLAIM_EMAIL, false).await?),
        reserve_email: Stmt::new(prepare(statements::RESERVE_EMAIL, false).await?),
        finalize_email: Stmt::new(prepare(statements::FINALIZE_EMAIL, false).await?),
        release_email: Stmt::new(prepare(statements::RELEASE_EMAIL, false).await?),
        find_email: Stmt::new(prepare(statements::FIND_EMAIL, true).await?),
        find_email_serial: Stmt::new(find_email_serial),
        ping: Stmt::new(prepare(statements::PING, true).await?),
        insert_mail: Stmt::new(prepare(statements::INSERT_MAIL, true).await?),
        bucket_mail: Stmt::new(prepare(statements::BUCKET_MAIL, true).await?),
        claim_mail: Stmt::new(prepare(statements::CLAIM_MAIL, false).await?),
        retry_mail: Stmt::new(prepare(statements::RETRY_MAIL, false).await?),
        delete_mail: Stmt::new(prepare(statements::DELETE_MAIL, true).await?),
        scan_users_first: Stmt::new(prepare(statements::SCAN_USERS_FIRST, true).await?),
        scan_users_after: Stmt::new(prepare(statements::SCAN_USERS_AFTER, true).await?),
    })
}

/// Reads the applied migrations (none when the keyspace or table is absent).
async fn applied(session: &Session, cfg: &ScyllaConfig) -> StoreResult<Option<Vec<(i32, String)>>> {
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
