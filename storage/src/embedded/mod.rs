//! The embedded backend: users, sessions and refresh-token state in a
//! [`fjall`] database under the data directory, signing keys in owner-only
//! files beside it, lockout counters in memory.
//!
//! **Writes** go to one committer thread (see [`committer`]), which applies
//! each operation as its own atomic batch, then makes the whole group
//! durable with one `fdatasync` before acknowledging any of them: an
//! acknowledged write survives a crash, and registration throughput is not
//! one fsync per user. The committer is the single writer, so the compound
//! operations (email-unique creation, versioned update, refresh rotation)
//! are atomic without locks.
//!
//! **Reads** are served on the calling thread from fjall's memtables and
//! block cache. A read may observe a write that is applied but whose group
//! fsync has not finished; such a write is acknowledged to its own caller
//! only after the fsync.
//!
//! **Lockout counters** are kept in memory: they are cheap, short-lived and
//! losing them in a crash only forgets recent failures. So is **stashed
//! flow state** (a social sign-in between its requests, minutes at most;
//! bounded): a restart makes such a user start again.

mod committer;
mod keyfiles;
mod lockout;
mod ratelimit;
mod stash;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};

use crate::codec;
use crate::model::{
    IdentityClaim, LockoutPolicy, LockoutStatus, OutboxRecord, RateLimit, RotateOutcome,
    RotateRequest, SessionId, SessionRecord, SigningKeyRecord, UserId, UserRecord,
};
use crate::traits::{TokenStore, UserStore};
use crate::{StoreError, StoreResult};

use committer::{Committer, Op};

/// Metric names of this backend.
pub mod metric {
    /// Histogram: operations written and fsynced together by one group commit.
    pub const GROUP_COMMIT_SIZE: &str = "portcullis_store_group_commit_size";
}

/// Subdirectory of the data directory holding the database.
const DB_DIR: &str = "store";
/// Subdirectory holding signing keys (mode 0700, files 0600).
const KEYS_DIR: &str = "keys";

pub(crate) fn fjall_err(e: fjall::Error) -> StoreError {
    match e {
        fjall::Error::Io(io) => StoreError::Io(io),
        other => StoreError::Backend(format!("fjall: {other}")),
    }
}

/// The keyspaces.
#[derive(Clone)]
pub(crate) struct Tables {
    pub db: Database,
    /// user id -> user record
    pub users: Keyspace,
    /// normalized email -> user id
    pub emails: Keyspace,
    /// user id ++ session id -> session record
    pub sessions: Keyspace,
    /// outbox message id (UUIDv7, so time-ordered) -> outbox record
    pub outbox: Keyspace,
    /// provider ++ 0 ++ subject -> user id ++ claimed at (ms, big-endian)
    pub identities: Keyspace,
    /// Messages in the outbox, exactly: counted at open, then kept by the
    /// committer (fjall's `approximate_len` also counts deletions).
    pub outbox_len: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The identity index's key of (`provider`, `subject`).
pub(crate) fn identity_key(provider: &str, subject: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(provider.len() + 1 + subject.len());
    k.extend_from_slice(provider.as_bytes());
    k.push(0);
    k.extend_from_slice(subject.as_bytes());
    k
}

/// Decodes an identity index value.
pub(crate) fn identity_claim(v: &[u8]) -> StoreResult<IdentityClaim> {
    let (id, at) = v
        .split_first_chunk::<16>()
        .and_then(|(id, rest)| Some((*id, <[u8; 8]>::try_from(rest).ok()?)))
        .ok_or_else(|| StoreError::Corrupt("identity index entry is malformed".into()))?;
    Ok(IdentityClaim {
        user_id: UserId(id),
        claimed_at_ms: u64::from_be_bytes(at),
    })
}

pub(crate) fn session_key(user: UserId, sid: SessionId) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..16].copy_from_slice(&user.0);
    k[16..].copy_from_slice(&sid.0);
    k
}

/// The embedded store. Implements both [`UserStore`] and [`TokenStore`].
pub struct EmbeddedStore {
    tables: Tables,
    committer: Committer,
    lockout: lockout::Lockouts,
    limits: ratelimit::RateLimits,
    stash: stash::Stash,
    keys_dir: PathBuf,
    /// Outbox claims (one process owns this store, so they live in memory).
    mail_claims: std::sync::Mutex<std::collections::HashMap<[u8; 16], u64>>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("keys_dir", &self.keys_dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store under `data_dir`. Fails with a clear
    /// message when the directory cannot be created, is not writable, or is
    /// locked by another running Portcullis.
    pub fn open(data_dir: &Path) -> StoreResult<EmbeddedStore> {
        let private = |dir: &Path| {
            crate::private_fs::ensure_dir(dir).map_err(|e| {
                StoreError::Io(std::io::Error::new(
                    e.kind(),
                    format!("cannot create or restrict {}: {e}", dir.display()),
                ))
            })
        };
        private(data_dir)?;
        // fjall creates the files and directories inside with the process
        // umask (the binary's is 077); the store directory itself is ours.
        private(&data_dir.join(DB_DIR))?;
        let db = Database::builder(data_dir.join(DB_DIR))
            .manual_journal_persist(true)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StoreError::Unavailable(format!(
                    "data directory {} is in use by another process",
                    data_dir.display()
                )),
                other => fjall_err(other),
            })?;
        let users = db
            .keyspace("users", KeyspaceCreateOptions::default)
            .map_err(fjall_err)?;
        let emails = db
            .keyspace("emails", KeyspaceCreateOptions::default)
            .map_err(fjall_err)?;
        let sessions = db
            .keyspace("sessions", KeyspaceCreateOptions::default)
            .map_err(fjall_err)?;
        let outbox = db
            .keyspace("outbox", KeyspaceCreateOptions::default)
            .map_err(fjall_err)?;
        let identities = db
            .keyspace("identities", KeyspaceCreateOptions::default)
            .map_err(fjall_err)?;
        let queued = outbox.iter().count() as u64;
        let tables = Tables {
            db,
            users,
            emails,
            sessions,
            outbox,
            identities,
            outbox_len: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(queued)),
        };
        let keys_dir = data_dir.join(KEYS_DIR);
        keyfiles::ensure_dir(&keys_dir)?;
        Ok(EmbeddedStore {
            committer: Committer::start(tables.clone())?,
            tables,
            lockout: lockout::Lockouts::default(),
            limits: ratelimit::RateLimits::default(),
            stash: stash::Stash::default(),
            keys_dir,
            mail_claims: Default::default(),
        })
    }

    fn release_claim(&self, id: [u8; 16]) {
        self.mail_claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }

    /// Number of stored users (a full scan; for tests and tools).
    pub fn user_count(&self) -> StoreResult<u64> {
        let mut n = 0;
        for item in self.tables.users.iter() {
            item.into_inner().map_err(fjall_err)?;
            n += 1;
        }
        Ok(n)
    }

    fn read_session(&self, user: UserId, sid: SessionId) -> StoreResult<Option<SessionRecord>> {
        self.tables
            .sessions
            .get(session_key(user, sid))
            .map_err(fjall_err)?
            .map(|v| codec::decode_session(&v))
            .transpose()
    }
}

#[async_trait]
impl UserStore for EmbeddedStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.committer
            .run(Op::CreateUser(Box::new(user.clone())))
            .await?
            .unit()
    }

    async fn find_user_id_by_email(&self, email: &str) -> StoreResult<Option<UserId>> {
        let Some(v) = self
            .tables
            .emails
            .get(email.as_bytes())
            .map_err(fjall_err)?
        else {
            return Ok(None);
        };
        let id: [u8; 16] = v
            .as_ref()
            .try_into()
            .map_err(|_| StoreError::Corrupt("email index entry is not a user id".into()))?;
        Ok(Some(UserId(id)))
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.tables
            .users
            .get(id.0)
            .map_err(fjall_err)?
            .map(|v| codec::decode_user(&v))
            .transpose()
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityClaim>> {
        self.tables
            .identities
            .get(identity_key(provider, subject))
            .map_err(fjall_err)?
            .map(|v| identity_claim(&v))
            .transpose()
    }

    async fn claim_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
        now_ms: u64,
    ) -> StoreResult<IdentityClaim> {
        self.committer
            .run(Op::ClaimIdentity(
                identity_key(provider, subject),
                user,
                now_ms,
            ))
            .await?
            .claim()
    }

    async fn release_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
    ) -> StoreResult<bool> {
        self.committer
            .run(Op::ReleaseIdentity(identity_key(provider, subject), user))
            .await?
            .existed()
    }

    async fn update_user_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.committer
            .run(Op::UpdateUser(
                Box::new(user.clone()),
                expected_version,
                mail.to_vec(),
            ))
            .await?
            .unit()
    }

    async fn change_email_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.committer
            .run(Op::ChangeEmail(
                Box::new(user.clone()),
                expected_version,
                mail.to_vec(),
            ))
            .await?
            .unit()
    }

    async fn due_mail(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<OutboxRecord>> {
        // The outbox holds only undelivered messages: a short scan, off the
        // async workers all the same.
        let outbox = self.tables.outbox.clone();
        tokio::task::spawn_blocking(move || -> StoreResult<Vec<OutboxRecord>> {
            let mut due = Vec::new();
            for item in outbox.iter() {
                let (_, v) = item.into_inner().map_err(fjall_err)?;
                let m = codec::decode_outbox(&v)?;
                if m.due_at_ms <= now_ms {
                    due.push(m);
                    if due.len() >= limit {
                        break;
                    }
                }
            }
            Ok(due)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("outbox scan task failed: {e}")))?
    }

    async fn claim_mail(
        &self,
        mail: &OutboxRecord,
        now_ms: u64,
        until_ms: u64,
    ) -> StoreResult<bool> {
        if !self
            .tables
            .outbox
            .contains_key(mail.id)
            .map_err(fjall_err)?
        {
            return Ok(false);
        }
        let mut claims = self
            .mail_claims
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        claims.retain(|_, until| *until > now_ms);
        if claims.contains_key(&mail.id) {
            return Ok(false);
        }
        claims.insert(mail.id, until_ms);
        Ok(true)
    }

    async fn retry_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        self.committer
            .run(Op::PutMail(Box::new(mail.clone())))
            .await?
            .unit()?;
        self.release_claim(mail.id);
        Ok(())
    }

    async fn delete_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        self.committer.run(Op::DeleteMail(mail.id)).await?.unit()?;
        self.release_claim(mail.id);
        Ok(())
    }

    async fn outbox_len(&self) -> StoreResult<Option<u64>> {
        Ok(Some(
            self.tables
                .outbox_len
                .load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    async fn scan_users(
        &self,
        after: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        let users = self.tables.users.clone();
        tokio::task::spawn_blocking(move || -> StoreResult<Vec<UserRecord>> {
            let mut out = Vec::new();
            let range = match after {
                None => users.range::<[u8; 16], _>(..),
                Some(id) => {
                    users.range((std::ops::Bound::Excluded(id.0), std::ops::Bound::Unbounded))
                }
            };
            for item in range {
                let (_, v) = item.into_inner().map_err(fjall_err)?;
                out.push(codec::decode_user(&v)?);
                if out.len() >= limit.max(1) {
                    break;
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("user scan task failed: {e}")))?
    }

    async fn ping(&self) -> StoreResult<()> {
        self.committer.ping()
    }

    fn is_broken(&self) -> bool {
        self.committer.broken()
    }

    async fn flush(&self) -> StoreResult<()> {
        self.committer.run(Op::Sync).await?.unit()
    }
}

#[async_trait]
impl TokenStore for EmbeddedStore {
    fn is_local_authority(&self) -> bool {
        true
    }

    async fn create_session(
        &self,
        session: &SessionRecord,
        max_sessions: usize,
    ) -> StoreResult<Vec<SessionId>> {
        self.committer
            .run(Op::PutSession(Box::new(session.clone()), max_sessions))
            .await?
            .deleted()
    }

    async fn get_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .read_session(user_id, session_id)?
            .filter(|s| s.is_live(now_ms)))
    }

    async fn list_sessions(&self, user_id: UserId, now_ms: u64) -> StoreResult<Vec<SessionRecord>> {
        let mut out = Vec::new();
        for item in self.tables.sessions.prefix(user_id.0) {
            let (_, v) = item.into_inner().map_err(fjall_err)?;
            let s = codec::decode_session(&v)?;
            if s.is_live(now_ms) {
                out.push(s);
            }
        }
        out.sort_by_key(|s| (s.created_at_ms, s.id));
        Ok(out)
    }

    async fn delete_session(&self, user_id: UserId, session_id: SessionId) -> StoreResult<bool> {
        self.committer
            .run(Op::DeleteSession(user_id, session_id))
            .await?
            .existed()
    }

    async fn delete_all_sessions(&self, user_id: UserId) -> StoreResult<Vec<SessionId>> {
        self.committer
            .run(Op::DeleteAllSessions(user_id))
            .await?
            .deleted()
    }

    async fn rotate_refresh(&self, request: &RotateRequest) -> StoreResult<RotateOutcome> {
        self.committer
            .run(Op::Rotate(Box::new(request.clone())))
            .await?
            .rotated()
    }

    async fn refresh_chain_key(&self, candidate: [u8; 32]) -> StoreResult<[u8; 32]> {
        let dir = self.keys_dir.clone();
        tokio::task::spawn_blocking(move || keyfiles::secret(&dir, "refresh-chain", candidate))
            .await
            .map_err(|e| StoreError::Backend(format!("secret loading task failed: {e}")))?
    }

    async fn lockout_status(&self, key: &str, now_ms: u64) -> StoreResult<LockoutStatus> {
        Ok(self.lockout.status(key, now_ms))
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now_ms: u64,
        policy: &LockoutPolicy,
    ) -> StoreResult<LockoutStatus> {
        Ok(self.lockout.record_failure(key, now_ms, policy))
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        self.lockout.clear(key);
        Ok(())
    }

    async fn rate_limit(
        &self,
        key: &str,
        now_ms: u64,
        limit: &RateLimit,
    ) -> StoreResult<Option<u64>> {
        Ok(self.limits.check(key, now_ms, limit))
    }

    async fn stash(
        &self,
        key: &[u8; 32],
        value: &[u8],
        now_ms: u64,
        expires_at_ms: u64,
    ) -> StoreResult<bool> {
        self.stash.put(key, value, now_ms, expires_at_ms)
    }

    async fn take_stashed(&self, key: &[u8; 32], now_ms: u64) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.stash.take(key, now_ms))
    }

    async fn load_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let dir = self.keys_dir.clone();
        tokio::task::spawn_blocking(move || keyfiles::load_all(&dir))
            .await
            .map_err(|e| StoreError::Backend(format!("key loading task failed: {e}")))?
    }

    async fn save_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let dir = self.keys_dir.clone();
        let key = key.clone();
        tokio::task::spawn_blocking(move || keyfiles::save(&dir, &key))
            .await
            .map_err(|e| StoreError::Backend(format!("key saving task failed: {e}")))?
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        let dir = self.keys_dir.clone();
        let kid = kid.to_owned();
        tokio::task::spawn_blocking(move || keyfiles::delete(&dir, &kid))
            .await
            .map_err(|e| StoreError::Backend(format!("key deletion task failed: {e}")))?
    }

    async fn purge_expired(&self, now_ms: u64) -> StoreResult<u64> {
        let mut removed =
            self.lockout.purge(now_ms) + self.limits.purge(now_ms) + self.stash.purge(now_ms);
        // Scan on a blocking thread, not on the writer: writes keep flowing.
        // Each chunk of expired keys is then one small writer operation.
        let sessions = self.tables.sessions.clone();
        let expired = tokio::task::spawn_blocking(move || -> StoreResult<Vec<[u8; 32]>> {
            let mut keys = Vec::new();
            for item in sessions.iter() {
                let (k, v) = item.into_inner().map_err(fjall_err)?;
                let live = codec::decode_session(&v).is_ok_and(|s| s.is_live(now_ms));
                if !live && let Ok(key) = <[u8; 32]>::try_from(&*k) {
                    keys.push(key);
                }
            }
            Ok(keys)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("session scan task failed: {e}")))??;
        for chunk in expired.chunks(committer::PURGE_CHUNK) {
            removed += self
                .committer
                .run(Op::DeleteExpired(chunk.to_vec(), now_ms))
                .await?
                .count()?;
        }
        Ok(removed)
    }

    async fn session_count_estimate(&self) -> StoreResult<Option<u64>> {
        // From the LSM tree's metadata, without a scan: one entry per
        // session, including expired ones the next purge will remove.
        Ok(Some(self.tables.sessions.approximate_len() as u64))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.committer.ping()
    }

    fn is_broken(&self) -> bool {
        self.committer.broken()
    }

    async fn flush(&self) -> StoreResult<()> {
        self.committer.run(Op::Sync).await?.unit()
    }
}

/// Keeps the store alive while shared (used by `Arc<EmbeddedStore>` as both traits).
pub type SharedEmbeddedStore = Arc<EmbeddedStore>;
