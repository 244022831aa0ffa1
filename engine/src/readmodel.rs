//! In-memory read model: user profiles and live sessions, so `/v1/users/me`
//! and token checks are answered without a shard round trip or a store read.
//!
//! **Single writer per entry**: entries of a user are inserted, replaced and
//! removed only by operations running in that user's partition (or by
//! registration, before anyone else knows the new id). Readers on any thread
//! only read. A miss is never an answer: the caller falls back to the user's
//! shard, which reads the store and fills the entry. The model is enabled only
//! when the token store is a local authority (the embedded store), because
//! only then can no other process revoke a session behind its back.
//!
//! **Revocation writes a tombstone first**, before the store delete, and a
//! tombstone is never overwritten (session ids are never reused). So even if
//! a revoking operation is abandoned after its store write was queued, no
//! later read can bring the session back from a store that has not applied
//! the delete yet. Live entries are trusted for at most [`LIVE_FOR_MS`].

use std::sync::Arc;

use portcullis_storage::{SessionId, SessionRecord, UserId, UserRecord};
use quick_cache::sync::Cache;

use crate::model::UserView;
use crate::views::user_view;

/// How long a cached "session is live" is trusted before the store is asked again.
pub(crate) const LIVE_FOR_MS: u64 = 15 * 60 * 1000;

/// Marks a revoked session in the cache.
const TOMBSTONE: u64 = 0;

/// What the cache knows of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Live (until the cached bound).
    Live,
    /// Revoked in this process.
    Revoked,
    /// Not cached, or cached long enough ago to ask the store again.
    Unknown,
}

/// Cached profiles and session liveness.
pub(crate) struct ReadModel {
    enabled: bool,
    users: Cache<UserId, Arc<UserView>>,
    sessions: Cache<(UserId, SessionId), u64>,
}

impl ReadModel {
    pub(crate) fn new(enabled: bool, capacity: usize) -> ReadModel {
        let capacity = capacity.max(16);
        ReadModel {
            enabled,
            users: Cache::new(capacity),
            sessions: Cache::new(capacity),
        }
    }

    /// The cached profile, if any.
    pub(crate) fn user(&self, id: UserId) -> Option<Arc<UserView>> {
        if !self.enabled {
            return None;
        }
        self.users.get(&id)
    }

    /// What is known of the session at `now_ms`.
    pub(crate) fn session(&self, user: UserId, sid: SessionId, now_ms: u64) -> Known {
        if !self.enabled {
            return Known::Unknown;
        }
        match self.sessions.get(&(user, sid)) {
            Some(TOMBSTONE) => Known::Revoked,
            Some(until) if now_ms < until => Known::Live,
            _ => Known::Unknown,
        }
    }

    /// Records a user (writer: the user's partition).
    pub(crate) fn put_user(&self, user: &UserRecord) -> Arc<UserView> {
        let view = Arc::new(user_view(user));
        if self.enabled {
            self.users.insert(user.id, view.clone());
        }
        view
    }

    /// Records a live session (writer: the user's partition). A tombstone stays.
    pub(crate) fn put_session(&self, s: &SessionRecord, now_ms: u64) {
        if !self.enabled {
            return;
        }
        let key = (s.user_id, s.id);
        if self.sessions.get(&key) == Some(TOMBSTONE) {
            return;
        }
        let until = s
            .expires_at_ms
            .min(s.max_expires_at_ms)
            .min(now_ms.saturating_add(LIVE_FOR_MS))
            .max(TOMBSTONE + 1);
        self.sessions.insert(key, until);
    }

    /// Forgets a live entry (a tombstone stays), before a store operation
    /// whose outcome decides the session's fate (refresh rotation).
    pub(crate) fn forget_session(&self, user: UserId, sid: SessionId) {
        self.sessions.remove_if(&(user, sid), |v| *v != TOMBSTONE);
    }

    /// Marks a session revoked (writer: the user's partition), before the
    /// store delete is issued.
    pub(crate) fn revoke_session(&self, user: UserId, sid: SessionId) {
        if self.enabled {
            self.sessions.insert((user, sid), TOMBSTONE);
        }
    }
}
