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
//! | social sign-in of a linked identity | 2 (`identities`, `users`) | 0 | 0 |
//! | social sign-in creating an account | 3 (`identities`, `users_by_email`, `users`) | 1 (`users`) | 2 (`identities`, `users_by_email`, `IF NOT EXISTS`) |
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
//! **Identities** (social login, `identities`: (provider, subject) -> user)
//! are claimed with `INSERT ... IF NOT EXISTS` and released with `DELETE ...
//! IF user_id`; the user row lists its identities, and the engine treats an
//! entry whose row does not list it as left over (`identity.rs`).
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
//!
//! **Files.** Opening a session and connecting the store: `session.rs`; the
//! prepared statements and their kinds: `prepared.rs`; running statements
//! and writing rows: `store.rs`; the email index (claims, reservations,
//! releases): `email.rs`; the identity index: `identity.rs`; LWT answers: `lwt.rs`; the [`UserStore`]
//! implementation: `user_store.rs`; [`migrate`] and [`server_kind`]:
//! `migration.rs`.

pub mod config;
mod email;
mod errmap;
#[cfg(any(test, feature = "conformance"))]
pub mod fixture;
mod identity;
mod lwt;
mod migration;
mod prepared;
pub mod retry;
mod row;
pub mod schema;
mod session;
mod statements;
mod store;
mod tls;
mod user_store;

#[cfg(test)]
mod tests;

use scylla::client::session::Session;

pub use config::{ScyllaConfig, ScyllaTls, Tablets};
pub use migration::{MigrateReport, ServerKind, migrate, server_kind};

#[cfg(doc)]
use crate::traits::UserStore;
use prepared::Statements;

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
