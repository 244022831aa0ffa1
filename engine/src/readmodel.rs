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

use std::sync::Arc;

use portcullis_storage::{SessionId, SessionRecord, UserId, UserRecord};
use quick_cache::sync::Cache;

use crate::command::UserView;
use crate::views::user_view;

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

    /// Whether the session is known live at `now_ms`. `None`: not known (ask the store).
    pub(crate) fn session_live(&self, user: UserId, sid: SessionId, now_ms: u64) -> Option<bool> {
        if !self.enabled {
            return None;
        }
        self.sessions.get(&(user, sid)).map(|until| now_ms < until)
    }

    /// Records a user (writer: the user's partition).
    pub(crate) fn put_user(&self, user: &UserRecord) -> Arc<UserView> {
        let view = Arc::new(user_view(user));
        if self.enabled {
            self.users.insert(user.id, view.clone());
        }
        view
    }

    /// Records a live session (writer: the user's partition).
    pub(crate) fn put_session(&self, s: &SessionRecord) {
        if self.enabled {
            self.sessions
                .insert((s.user_id, s.id), s.expires_at_ms.min(s.max_expires_at_ms));
        }
    }

    /// Forgets a session (writer: the user's partition).
    pub(crate) fn drop_session(&self, user: UserId, sid: SessionId) {
        self.sessions.remove(&(user, sid));
    }
}
