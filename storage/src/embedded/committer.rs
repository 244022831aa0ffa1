//! The group-commit writer.
//!
//! One thread owns every write. It takes the first waiting request, drains up
//! to [`MAX_GROUP`] more that are already queued, applies each as its own
//! atomic fjall batch (so each sees the ones before it), then calls
//! `persist(SyncData)` once for the group and only then answers every request
//! in it. Callers await their answer; the queue in front of the thread is
//! bounded ([`QUEUE`]), so a slow disk pushes back on callers instead of
//! growing memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use fjall::PersistMode;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::{Tables, fjall_err, session_key};
use crate::codec;
use crate::model::{
    IdentityClaim, OutboxRecord, RotateOutcome, RotateRequest, SessionId, SessionRecord, UserId,
    UserRecord,
};
use crate::{StoreError, StoreResult};

/// Requests waiting for the committer, at most.
const QUEUE: usize = 4096;
/// Requests applied per fsync, at most.
const MAX_GROUP: usize = 1024;
/// Expired sessions deleted per writer operation while purging.
pub(crate) const PURGE_CHUNK: usize = 1000;

/// A write operation, executed atomically by the committer.
pub(crate) enum Op {
    CreateUser(Box<UserRecord>),
    /// The record, its expected version, and messages to queue with it.
    UpdateUser(Box<UserRecord>, u64, Vec<OutboxRecord>),
    ChangeEmail(Box<UserRecord>, u64, Vec<OutboxRecord>),
    /// Claims an identity index key for a user unless another holds it.
    ClaimIdentity(Vec<u8>, UserId, u64),
    /// Removes an identity index key if this user holds it.
    ReleaseIdentity(Vec<u8>, UserId),
    /// Inserts or replaces an outbox message.
    PutMail(Box<OutboxRecord>),
    DeleteMail([u8; 16]),
    /// Stores a session; when the user then has more than this many
    /// sessions (0: no limit), the least recently used others are deleted.
    PutSession(Box<SessionRecord>, usize),
    DeleteSession(UserId, SessionId),
    DeleteAllSessions(UserId),
    Rotate(Box<RotateRequest>),
    /// Deletes these sessions if they are still expired at `now_ms`.
    DeleteExpired(Vec<[u8; 32]>, u64),
    /// Nothing to apply; just make everything before it durable.
    Sync,
}

/// What an operation returns.
pub(crate) enum Done {
    Unit,
    Existed(bool),
    Deleted(Vec<SessionId>),
    Rotated(RotateOutcome),
    Count(u64),
    Claim(IdentityClaim),
}

fn unexpected() -> StoreError {
    StoreError::Backend("committer returned an unexpected result kind".into())
}

impl Done {
    pub(crate) fn unit(self) -> StoreResult<()> {
        match self {
            Done::Unit => Ok(()),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn existed(self) -> StoreResult<bool> {
        match self {
            Done::Existed(b) => Ok(b),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn deleted(self) -> StoreResult<Vec<SessionId>> {
        match self {
            Done::Deleted(v) => Ok(v),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn rotated(self) -> StoreResult<RotateOutcome> {
        match self {
            Done::Rotated(r) => Ok(r),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn claim(self) -> StoreResult<IdentityClaim> {
        match self {
            Done::Claim(c) => Ok(c),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn count(self) -> StoreResult<u64> {
        match self {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }
}

struct Request {
    op: Op,
    reply: oneshot::Sender<StoreResult<Done>>,
}

/// Handle to the committer thread. Dropping it stops the thread after the
/// queued requests are done.
pub(crate) struct Committer {
    tx: Option<mpsc::Sender<Request>>,
    healthy: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn start(tables: Tables) -> StoreResult<Committer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let healthy = Arc::new(AtomicBool::new(true));
        let h = healthy.clone();
        let thread = std::thread::Builder::new()
            .name("portcullis-committer".into())
            .spawn(move || run(tables, rx, h))
            .map_err(StoreError::Io)?;
        Ok(Committer {
            tx: Some(tx),
            healthy,
            thread: Some(thread),
        })
    }

    /// Submits an operation and waits until it is applied and durable.
    pub(crate) async fn run(&self, op: Op) -> StoreResult<Done> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("store is closed".into()))?;
        let (reply, rx) = oneshot::channel();
        tx.send(Request { op, reply })
            .await
            .map_err(|_| StoreError::Unavailable("store writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("store writer has stopped".into()))?
    }

    /// Whether an fsync has failed: fjall then refuses every later write, so
    /// only a restart recovers.
    pub(crate) fn broken(&self) -> bool {
        !self.healthy.load(Ordering::Acquire)
    }

    /// Whether the writer is running and its last fsync succeeded.
    pub(crate) fn ping(&self) -> StoreResult<()> {
        let running = self.tx.as_ref().is_some_and(|tx| !tx.is_closed());
        if running && self.healthy.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "store writer has failed (see earlier errors: disk full or I/O error?)".into(),
            ))
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Sessions stored per user (live or not yet purged), as far as the
/// writer has counted them: filled by one scan of a user's sessions the
/// first time it is needed, then kept by every write, so a new session
/// under the per-user cap reads no other session. For a user that reached
/// the cap the writer also keeps its sessions in last-use order, so each
/// further sign-in ends the least recently used without a scan. Bounded:
/// emptied (and refilled lazily) past [`MAX_COUNTED_USERS`].
#[derive(Default)]
pub(crate) struct SessionCounts(std::collections::HashMap<[u8; 16], Counted>);

/// A user's sessions in order of use: session id -> last use, and the
/// same ordered by use.
type UseOrder = (
    std::collections::HashMap<[u8; 16], u64>,
    std::collections::BTreeSet<(u64, [u8; 16])>,
);

#[derive(Default)]
struct Counted {
    n: u32,
    /// Kept once the user reached the cap.
    lru: Option<UseOrder>,
}

/// Users whose session count is kept at most.
const MAX_COUNTED_USERS: usize = 1 << 20;

impl SessionCounts {
    fn entry(&mut self, t: &Tables, user: UserId) -> StoreResult<&mut Counted> {
        if !self.0.contains_key(&user.0) {
            let mut n = 0u32;
            for item in t.sessions.prefix(user.0) {
                item.into_inner().map_err(fjall_err)?;
                n = n.saturating_add(1);
            }
            if self.0.len() >= MAX_COUNTED_USERS {
                self.0.clear();
            }
            self.0.insert(
                user.0,
                Counted {
                    n,
                    ..Counted::default()
                },
            );
        }
        self.0
            .get_mut(&user.0)
            .ok_or_else(|| StoreError::Backend("session count vanished".into()))
    }

    /// A session of `user` was deleted.
    fn deleted(&mut self, user: [u8; 16], sid: [u8; 16]) {
        if let Some(c) = self.0.get_mut(&user) {
            c.n = c.n.saturating_sub(1);
            if let Some((by_id, order)) = &mut c.lru
                && let Some(used) = by_id.remove(&sid)
            {
                order.remove(&(used, sid));
            }
        }
    }

    /// Every session of `user` was deleted.
    fn cleared(&mut self, user: UserId) {
        if let Some(c) = self.0.get_mut(&user.0) {
            *c = Counted::default();
        }
    }

    /// A session of `user` was used (rotated) at `at`.
    fn used(&mut self, user: UserId, sid: SessionId, at: u64) {
        if let Some(Counted {
            lru: Some((by_id, order)),
            ..
        }) = self.0.get_mut(&user.0)
            && let Some(used) = by_id.get_mut(&sid.0)
        {
            order.remove(&(*used, sid.0));
            *used = at;
            order.insert((at, sid.0));
        }
    }
}

fn run(tables: Tables, mut rx: mpsc::Receiver<Request>, healthy: Arc<AtomicBool>) {
    let mut group: Vec<(oneshot::Sender<StoreResult<Done>>, StoreResult<Done>)> =
        Vec::with_capacity(MAX_GROUP);
    let mut counts = SessionCounts::default();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(req) = next {
            let result = apply(&tables, &mut counts, req.op);
            group.push((req.reply, result));
            next = if group.len() < MAX_GROUP {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let synced = tables.db.persist(PersistMode::SyncData).map_err(fjall_err);
        match &synced {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, "store fsync failed; writes are not acknowledged");
                healthy.store(false, Ordering::Release);
            }
        }
        metrics::histogram!(super::metric::GROUP_COMMIT_SIZE).record(group.len() as f64);
        for (reply, result) in group.drain(..) {
            let answer = match (&synced, result) {
                (Ok(()), r) => r,
                (Err(e), _) => Err(StoreError::Unavailable(format!(
                    "durable write failed: {e}"
                ))),
            };
            let _ = reply.send(answer);
        }
    }
}

fn apply(t: &Tables, counts: &mut SessionCounts, op: Op) -> StoreResult<Done> {
    match op {
        Op::CreateUser(u) => {
            if t.emails
                .contains_key(u.email.as_bytes())
                .map_err(fjall_err)?
            {
                return Err(StoreError::EmailTaken);
            }
            if t.users.contains_key(u.id.0).map_err(fjall_err)? {
                return Err(StoreError::Backend(format!(
                    "user id {} already exists",
                    u.id
                )));
            }
            let mut b = t.db.batch();
            b.insert(&t.users, u.id.0, codec::encode_user(&u));
            b.insert(&t.emails, u.email.as_bytes(), u.id.0);
            b.commit().map_err(fjall_err)?;
            Ok(Done::Unit)
        }
        Op::UpdateUser(u, expected, mail) => {
            let Some(bytes) = t.users.get(u.id.0).map_err(fjall_err)? else {
                return Err(StoreError::NotFound);
            };
            let stored = codec::decode_user(&bytes)?;
            if stored.version != expected {
                return Err(StoreError::VersionConflict { expected });
            }
            if stored.email != u.email {
                return Err(StoreError::Backend(
                    "update_user cannot change the email address".into(),
                ));
            }
            // One batch: the record and its messages become durable together.
            let mut b = t.db.batch();
            b.insert(&t.users, u.id.0, codec::encode_user(&u));
            let added = queue_mail(t, &mut b, &mail)?;
            b.commit().map_err(fjall_err)?;
            t.outbox_len.fetch_add(added, Ordering::Relaxed);
            Ok(Done::Unit)
        }
        Op::ClaimIdentity(key, user, now_ms) => {
            if let Some(v) = t.identities.get(&key).map_err(fjall_err)? {
                return Ok(Done::Claim(super::identity_claim(&v)?));
            }
            let mut v = Vec::with_capacity(24);
            v.extend_from_slice(&user.0);
            v.extend_from_slice(&now_ms.to_be_bytes());
            t.identities.insert(&key, v).map_err(fjall_err)?;
            Ok(Done::Claim(IdentityClaim {
                user_id: user,
                claimed_at_ms: now_ms,
            }))
        }
        Op::ReleaseIdentity(key, user) => {
            let held = match t.identities.get(&key).map_err(fjall_err)? {
                Some(v) => super::identity_claim(&v)?.user_id == user,
                None => false,
            };
            if held {
                t.identities.remove(&key).map_err(fjall_err)?;
            }
            Ok(Done::Existed(held))
        }
        Op::PutMail(m) => {
            let new = !t.outbox.contains_key(m.id).map_err(fjall_err)?;
            t.outbox
                .insert(m.id, codec::encode_outbox(&m))
                .map_err(fjall_err)?;
            if new {
                t.outbox_len.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Done::Unit)
        }
        Op::DeleteMail(id) => {
            if t.outbox.contains_key(id).map_err(fjall_err)? {
                t.outbox.remove(id).map_err(fjall_err)?;
                let _ = t
                    .outbox_len
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                        Some(n.saturating_sub(1))
                    });
            }
            Ok(Done::Unit)
        }
        Op::ChangeEmail(u, expected, mail) => {
            let Some(bytes) = t.users.get(u.id.0).map_err(fjall_err)? else {
                return Err(StoreError::NotFound);
            };
            let stored = codec::decode_user(&bytes)?;
            if stored.version != expected {
                return Err(StoreError::VersionConflict { expected });
            }
            if let Some(owner) = t.emails.get(u.email.as_bytes()).map_err(fjall_err)?
                && owner.as_ref() != u.id.0.as_slice()
            {
                return Err(StoreError::EmailTaken);
            }
            // One batch: the record, the new index entry and the removal of
            // the old one become durable together.
            let mut b = t.db.batch();
            b.insert(&t.users, u.id.0, codec::encode_user(&u));
            if stored.email != u.email {
                b.remove(&t.emails, stored.email.as_bytes());
            }
            b.insert(&t.emails, u.email.as_bytes(), u.id.0);
            let added = queue_mail(t, &mut b, &mail)?;
            b.commit().map_err(fjall_err)?;
            t.outbox_len.fetch_add(added, Ordering::Relaxed);
            Ok(Done::Unit)
        }
        Op::PutSession(s, cap) => put_session(t, counts, &s, cap).map(Done::Deleted),
        Op::DeleteSession(user, sid) => {
            let key = session_key(user, sid);
            let existed = t.sessions.contains_key(key).map_err(fjall_err)?;
            if existed {
                t.sessions.remove(key).map_err(fjall_err)?;
                counts.deleted(user.0, sid.0);
            }
            Ok(Done::Existed(existed))
        }
        Op::DeleteAllSessions(user) => {
            let mut ids = Vec::new();
            let mut b = t.db.batch();
            for item in t.sessions.prefix(user.0) {
                let (k, _) = item.into_inner().map_err(fjall_err)?;
                if let Ok(sid) = <[u8; 16]>::try_from(&k[16..]) {
                    ids.push(SessionId(sid));
                }
                b.remove(&t.sessions, k);
            }
            b.commit().map_err(fjall_err)?;
            counts.cleared(user);
            Ok(Done::Deleted(ids))
        }
        Op::Rotate(req) => {
            let r = rotate(t, &req)?;
            if matches!(r, RotateOutcome::Rotated(_)) {
                counts.used(req.user_id, req.session_id, req.now_ms);
            }
            Ok(Done::Rotated(r))
        }
        Op::DeleteExpired(keys, now_ms) => {
            delete_expired(t, counts, &keys, now_ms).map(Done::Count)
        }
        Op::Sync => Ok(Done::Unit),
    }
}

fn rotate(t: &Tables, req: &RotateRequest) -> StoreResult<RotateOutcome> {
    let key = session_key(req.user_id, req.session_id);
    let Some(bytes) = t.sessions.get(key).map_err(fjall_err)? else {
        return Ok(RotateOutcome::Invalid);
    };
    let mut s = codec::decode_session(&bytes)?;
    if !s.is_live(req.now_ms) {
        return Ok(RotateOutcome::Invalid);
    }
    let current = bool::from(s.refresh_hash.ct_eq(&req.expected_hash))
        && s.generation == req.expected_generation;
    if !current {
        return Ok(RotateOutcome::Conflict);
    }
    s.refresh_hash = req.new_hash;
    s.generation += 1;
    s.rotated_at_ms = req.now_ms;
    s.last_used_at_ms = req.now_ms;
    s.expires_at_ms = req.new_expires_at_ms.min(s.max_expires_at_ms);
    t.sessions
        .insert(key, codec::encode_session(&s))
        .map_err(fjall_err)?;
    Ok(RotateOutcome::Rotated(s))
}

/// Adds `mail` to batch `b`; returns how many are new to the outbox.
fn queue_mail(
    t: &Tables,
    b: &mut fjall::OwnedWriteBatch,
    mail: &[OutboxRecord],
) -> StoreResult<u64> {
    let mut added = 0;
    for m in mail {
        if !t.outbox.contains_key(m.id).map_err(fjall_err)? {
            added += 1;
        }
        b.insert(&t.outbox, m.id, codec::encode_outbox(m));
    }
    Ok(added)
}

/// Stores `s`, then keeps at most `cap` sessions of its user: the others,
/// least recently used first, are deleted in the same batch. Returns the
/// ids deleted. Under the cap this reads no other session (the writer keeps
/// each user's count); the first time a user reaches it, one scan orders
/// its sessions by last use, kept from then on.
fn put_session(
    t: &Tables,
    counts: &mut SessionCounts,
    s: &SessionRecord,
    cap: usize,
) -> StoreResult<Vec<SessionId>> {
    let key = session_key(s.user_id, s.id);
    let new = !t.sessions.contains_key(key).map_err(fjall_err)?;
    let c = counts.entry(t, s.user_id)?;
    let after = c.n + u32::from(new);
    let mut b = t.db.batch();
    b.insert(&t.sessions, key, codec::encode_session(s));
    let mut evicted = Vec::new();
    if cap > 0 && after as usize > cap && c.lru.is_none() {
        let mut by_id = std::collections::HashMap::new();
        let mut order = std::collections::BTreeSet::new();
        for item in t.sessions.prefix(s.user_id.0) {
            let (_, v) = item.into_inner().map_err(fjall_err)?;
            let o = codec::decode_session(&v)?;
            by_id.insert(o.id.0, o.last_used_at_ms);
            order.insert((o.last_used_at_ms, o.id.0));
        }
        c.lru = Some((by_id, order));
    }
    if let Some((by_id, order)) = &mut c.lru {
        // The new session joins the order (or moves, when replaced).
        if let Some(old) = by_id.insert(s.id.0, s.last_used_at_ms) {
            order.remove(&(old, s.id.0));
        }
        order.insert((s.last_used_at_ms, s.id.0));
        while cap > 0 && by_id.len() > cap {
            let Some(&(used, sid)) = order.iter().find(|(_, id)| *id != s.id.0) else {
                break;
            };
            order.remove(&(used, sid));
            by_id.remove(&sid);
            b.remove(&t.sessions, session_key(s.user_id, SessionId(sid)));
            evicted.push(SessionId(sid));
        }
    }
    c.n = after - evicted.len() as u32;
    if let Err(e) = b.commit() {
        // Counted as if written: forget the user, to be counted afresh.
        counts.0.remove(&s.user_id.0);
        return Err(fjall_err(e));
    }
    Ok(evicted)
}

/// Deletes the given sessions that are (still) expired: the keys were
/// collected by a scan outside the writer, and a session may have been
/// refreshed since.
fn delete_expired(
    t: &Tables,
    counts: &mut SessionCounts,
    keys: &[[u8; 32]],
    now_ms: u64,
) -> StoreResult<u64> {
    let mut b = t.db.batch();
    let mut removed = Vec::new();
    for key in keys {
        let Some(v) = t.sessions.get(key).map_err(fjall_err)? else {
            continue;
        };
        let expired = codec::decode_session(&v).map_or(true, |s| !s.is_live(now_ms));
        if expired {
            b.remove(&t.sessions, *key);
            removed.push(key);
        }
    }
    b.commit().map_err(fjall_err)?;
    for key in &removed {
        let mut user = [0u8; 16];
        user.copy_from_slice(&key[..16]);
        let mut sid = [0u8; 16];
        sid.copy_from_slice(&key[16..]);
        counts.deleted(user, sid);
    }
    Ok(removed.len() as u64)
}
