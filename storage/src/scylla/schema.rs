//! The ScyllaDB schema as versioned CQL migrations, and the rules that apply
//! them: `portcullis migrate` runs the pending ones in order and records each
//! in `<keyspace>.schema_migrations`; `portcullis migrate --print` renders the
//! same CQL without connecting; `portcullis serve` refuses a keyspace whose
//! recorded version differs from the one this binary was built for.
//!
//! A migration, once released, never changes: its checksum is recorded with
//! it, and a recorded migration whose text no longer matches is an error (the
//! fix is a new migration). Every statement is idempotent (`IF NOT EXISTS`),
//! so a `migrate` interrupted between a statement and its record is simply
//! run again.

use std::fmt::Write as _;

use super::config::{ScyllaConfig, Tablets};

/// One schema version.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version number: 1, 2, 3, ... without gaps.
    pub version: i32,
    /// What it does, in a few words.
    pub name: &'static str,
    /// Its statements, with `{ks}` standing for the keyspace name.
    pub statements: &'static [&'static str],
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users and the email index",
        statements: &[
            // The user partition: everything a login needs after the email
            // lookup, in one row. Read by id, written with lightweight
            // transactions on `version` (optimistic concurrency).
            "CREATE TABLE IF NOT EXISTS {ks}.users (
    id uuid PRIMARY KEY,
    email text,
    password_hash text,
    name text,
    picture_url text,
    email_verified boolean,
    mfa_enabled boolean,
    created_at_ms bigint,
    updated_at_ms bigint,
    version bigint
) WITH compaction = {'class': 'LeveledCompactionStrategy'}
  AND caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'}
  AND comment = 'portcullis: one row per user (credential, profile, MFA, status)'",
            // The email partition: normalized email -> user id. Claimed with
            // `INSERT ... IF NOT EXISTS` (uniqueness); a reservation for an email
            // change is written `USING TTL` and made permanent when the change
            // completes, so an abandoned reservation expires by itself.
            "CREATE TABLE IF NOT EXISTS {ks}.users_by_email (
    email text PRIMARY KEY,
    user_id uuid,
    claimed_at_ms bigint
) WITH compaction = {'class': 'LeveledCompactionStrategy'}
  AND caching = {'keys': 'ALL', 'rows_per_partition': 'ALL'}
  AND comment = 'portcullis: normalized email -> user id (unique through LWT)'",
        ],
    },
    Migration {
        version: 2,
        name: "account state (pending tokens, TOTP)",
        statements: &[
            // Single-use token hashes and the sealed TOTP secret, in the user's
            // own row so they change under the same version check. `ADD` has no
            // `IF NOT EXISTS` in every ScyllaDB release: a rerun after an
            // interrupted migrate meets "conflicts with an existing column",
            // which `migrate` takes as already applied.
            "ALTER TABLE {ks}.users ADD account_state blob",
        ],
    },
    Migration {
        version: 3,
        name: "the outbox",
        statements: &[
            // Undelivered messages, spread over OUTBOX_BUCKETS partitions by
            // id. A message is queued here before its user row vouches for
            // it (users.account_state lists its id); the mailer sends only
            // vouched messages and deletes each once delivered, so the table
            // stays small. The TTL is a backstop for abandoned messages.
            "CREATE TABLE IF NOT EXISTS {ks}.outbox (
    bucket int,
    id uuid,
    user_id uuid,
    created_at_ms bigint,
    due_at_ms bigint,
    attempts int,
    payload blob,
    claimed_until_ms bigint,
    PRIMARY KEY (bucket, id)
) WITH default_time_to_live = 1209600
  AND comment = 'portcullis: mail waiting for delivery (outbox)'",
        ],
    },
    Migration {
        version: 4,
        name: "the identity index (social login)",
        statements: &[
            // (provider, subject) -> user: unique through LWT, like the email
            // index. The user row lists its identities (account_state); an
            // entry whose row does not is a left-over of an interrupted
            // sign-up or link, released once old (claimed_at_ms).
            "CREATE TABLE IF NOT EXISTS {ks}.identities (
    provider text,
    subject text,
    user_id uuid,
    claimed_at_ms bigint,
    PRIMARY KEY ((provider, subject))
) WITH compaction = {'class': 'LeveledCompactionStrategy'}
  AND comment = 'portcullis: (provider, subject) -> user id (unique through LWT)'",
        ],
    },
];

/// Partitions of the `outbox` table; the mailer reads each in turn.
pub(crate) const OUTBOX_BUCKETS: i32 = 16;

/// The `outbox` partition of a message id (its last byte is random).
pub(crate) fn outbox_bucket(id: &[u8; 16]) -> i32 {
    i32::from(id[15]) % OUTBOX_BUCKETS
}

/// Whether `cql` adds a column (a statement without `IF NOT EXISTS`).
pub(crate) fn adds_column(cql: &str) -> bool {
    let c = cql.trim_start().to_ascii_uppercase();
    c.starts_with("ALTER TABLE") && c.contains(" ADD ")
}

/// Whether a server message says the column to add is there already.
pub(crate) fn is_existing_column(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("conflicts with an existing column") || m.contains("already exists")
}

/// The schema version this binary reads and writes.
pub fn current_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The table that records applied migrations.
pub(crate) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (
    version int PRIMARY KEY,
    name text,
    checksum text,
    applied_at timestamp
) WITH comment = 'portcullis: applied schema migrations'";

/// Records one applied migration; `IF NOT EXISTS` so two concurrent
/// `migrate` runs record it once.
pub(crate) const RECORD: &str = "INSERT INTO {ks}.schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, toTimestamp(now())) IF NOT EXISTS";

/// Reads the applied migrations.
pub(crate) const APPLIED: &str = "SELECT version, checksum FROM {ks}.schema_migrations";

impl Migration {
    /// SHA-256 of the migration's statements (hex), recorded with it.
    pub fn checksum(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for s in self.statements {
            ctx.update(s.as_bytes());
            ctx.update(b"\n;\n");
        }
        ctx.finish()
            .as_ref()
            .iter()
            .fold(String::with_capacity(64), |mut out, b| {
                let _ = write!(out, "{b:02x}");
                out
            })
    }

    /// The statements for keyspace `ks`.
    pub fn render(&self, ks: &str) -> Vec<String> {
        self.statements
            .iter()
            .map(|s| with_keyspace(s, ks))
            .collect()
    }
}

/// Substitutes the keyspace name into a statement.
pub(crate) fn with_keyspace(statement: &str, ks: &str) -> String {
    statement.replace("{ks}", ks)
}

/// Why the recorded migrations cannot be brought up to date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A recorded migration's text differs from this binary's.
    #[error(
        "migration {version} was applied with checksum {recorded}, but this binary's migration {version} has checksum {expected}: released migrations must not change; add a new one"
    )]
    Modified {
        /// The migration.
        version: i32,
        /// Recorded checksum.
        recorded: String,
        /// This binary's checksum.
        expected: String,
    },
    /// The keyspace has a migration this binary does not know: it was
    /// migrated by a newer Portcullis.
    #[error(
        "the keyspace has migration {version}, which this binary does not know (it knows up to {known}): it was migrated by a newer Portcullis; run that version or a newer one"
    )]
    Unknown {
        /// The unknown version.
        version: i32,
        /// The newest version this binary knows.
        known: i32,
    },
}

/// The migrations still to apply, in order, given the recorded
/// `(version, checksum)` pairs (in any order).
pub fn plan<'m>(
    migrations: &'m [Migration],
    applied: &[(i32, String)],
) -> Result<Vec<&'m Migration>, PlanError> {
    let known = migrations.last().map_or(0, |m| m.version);
    for (version, recorded) in applied {
        match migrations.iter().find(|m| m.version == *version) {
            None => {
                return Err(PlanError::Unknown {
                    version: *version,
                    known,
                });
            }
            Some(m) => {
                let expected = m.checksum();
                if &expected != recorded {
                    return Err(PlanError::Modified {
                        version: *version,
                        recorded: recorded.clone(),
                        expected,
                    });
                }
            }
        }
    }
    Ok(migrations
        .iter()
        .filter(|m| !applied.iter().any(|(v, _)| *v == m.version))
        .collect())
}

/// The `CREATE KEYSPACE` statement for `cfg`'s keyspace and replication.
pub fn keyspace_statement(cfg: &ScyllaConfig) -> String {
    let mut replication = String::from("{'class': 'NetworkTopologyStrategy'");
    for (dc, rf) in &cfg.replication {
        let _ = write!(replication, ", '{dc}': {rf}");
    }
    replication.push('}');
    let mut s = format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {replication}",
        cfg.keyspace
    );
    match cfg.tablets {
        Tablets::Off => s.push_str(" AND tablets = {'enabled': false}"),
        Tablets::On => s.push_str(" AND tablets = {'enabled': true}"),
        Tablets::ServerDefault => {}
    }
    s
}

/// Everything `portcullis migrate` would run on an empty keyspace, as a CQL
/// script (`migrate --print`), followed, as comments, by every statement the
/// store prepares at start-up, so a DBA reviews all the CQL Portcullis runs.
pub fn print(cfg: &ScyllaConfig) -> String {
    let ks = &cfg.keyspace;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "-- Portcullis ScyllaDB schema, version {} (portcullis migrate --print)\n",
        current_version()
    );
    let _ = writeln!(out, "{};\n", keyspace_statement(cfg));
    let _ = writeln!(out, "{};\n", with_keyspace(MIGRATIONS_TABLE, ks));
    for m in MIGRATIONS {
        let _ = writeln!(out, "-- migration {}: {}", m.version, m.name);
        for s in m.render(ks) {
            let _ = writeln!(out, "{s};\n");
        }
        let _ = writeln!(
            out,
            "INSERT INTO {ks}.schema_migrations (version, name, checksum, applied_at) VALUES ({}, '{}', '{}', toTimestamp(now())) IF NOT EXISTS;\n",
            m.version,
            m.name.replace('\'', "''"),
            m.checksum()
        );
    }
    let _ = writeln!(
        out,
        "-- Statements prepared by `portcullis serve` (for review; not part of the migration):"
    );
    for (name, cql) in super::statements::ALL {
        let _ = writeln!(out, "-- {name}: {};", with_keyspace(cql, ks));
    }
    out
}
