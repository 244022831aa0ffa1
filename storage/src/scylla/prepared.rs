//! The prepared statements: each statement's kind (read, write, LWT) and
//! the counter of that kind, and preparing them all at start-up.

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

use super::{ScyllaConfig, errmap, metric, schema, statements};
use crate::{StoreError, StoreResult};

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
pub(super) struct Stmt {
    pub(super) st: PreparedStatement,
    pub(super) count: metrics::Counter,
}

impl Stmt {
    fn new(st: PreparedStatement) -> Stmt {
        let kind = StatementKind::of(st.get_statement(), st.is_confirmed_lwt());
        let count = metrics::counter!(metric::STATEMENTS_TOTAL, "kind" => kind.label());
        Stmt { st, count }
    }
}

pub(super) struct Statements {
    pub(super) insert_user: Stmt,
    pub(super) delete_user: Stmt,
    pub(super) get_user: Stmt,
    pub(super) get_user_serial: Stmt,
    pub(super) update_user: Stmt,
    pub(super) update_user_email: Stmt,
    pub(super) claim_email: Stmt,
    pub(super) reserve_email: Stmt,
    pub(super) finalize_email: Stmt,
    pub(super) release_email: Stmt,
    pub(super) find_email: Stmt,
    pub(super) find_email_serial: Stmt,
    pub(super) ping: Stmt,
    pub(super) insert_mail: Stmt,
    pub(super) bucket_mail: Stmt,
    pub(super) claim_mail: Stmt,
    pub(super) retry_mail: Stmt,
    pub(super) delete_mail: Stmt,
    pub(super) scan_users_first: Stmt,
    pub(super) scan_users_after: Stmt,
    pub(super) claim_identity: Stmt,
    pub(super) release_identity: Stmt,
    pub(super) find_identity: Stmt,
    pub(super) find_identity_serial: Stmt,
}

pub(super) async fn prepare_all(session: &Session, cfg: &ScyllaConfig) -> StoreResult<Statements> {
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
    let mut find_identity_serial = prepare(statements::FIND_IDENTITY, true).await?;
    find_identity_serial.set_consistency(serial);
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
        claim_identity: Stmt::new(prepare(statements::CLAIM_IDENTITY, false).await?),
        release_identity: Stmt::new(prepare(statements::RELEASE_IDENTITY, false).await?),
        find_identity: Stmt::new(prepare(statements::FIND_IDENTITY, true).await?),
        find_identity_serial: Stmt::new(find_identity_serial),
    })
}
