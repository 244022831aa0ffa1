//! The key layout (see the table in the module docs): every key of a user
//! under its hash tag, lockout keys by a digest of the email.

use super::RedisClusterStore;
use crate::model::{SessionId, UserId};

/// Whether `key` is a session hash (`<prefix>:{<uid>}:s:<sid>`) of this deployment.
pub(super) fn is_session_key(key: &[u8], prefix_with_brace: &[u8]) -> bool {
    key.starts_with(prefix_with_brace) && key.windows(4).any(|w| w == b"}:s:")
}

fn lockout_key_digest(key: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl RedisClusterStore {
    fn user_tag(&self, user: UserId) -> String {
        format!("{}:{{{}}}", self.cfg.key_prefix, user.to_uuid_string())
    }

    pub(super) fn session_prefix(&self, user: UserId) -> String {
        format!("{}:s:", self.user_tag(user))
    }

    pub(super) fn session_key(&self, user: UserId, sid: SessionId) -> String {
        format!("{}:s:{}", self.user_tag(user), sid.to_b64())
    }

    pub(super) fn index_key(&self, user: UserId) -> String {
        format!("{}:idx", self.user_tag(user))
    }

    pub(super) fn lockout_key(&self, key: &str) -> String {
        format!("{}:lock:{}", self.cfg.key_prefix, lockout_key_digest(key))
    }

    /// A stashed value: its own slot, keyed by the digest the engine gives.
    pub(super) fn stash_key(&self, key: &[u8; 32]) -> String {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}:stash:{hex}", self.cfg.key_prefix)
    }

    pub(super) fn signing_keys_key(&self) -> String {
        format!("{}:signing-keys", self.cfg.key_prefix)
    }
}
