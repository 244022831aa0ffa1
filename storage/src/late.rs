//! A store connected after start-up: the server serves (not ready) while a
//! cluster it needs is still unreachable, and a background task installs
//! the store once it connects. Until then every operation fails as
//! [`StoreError::Unavailable`] (the edge answers 503 with `Retry-After`)
//! and readiness fails.
//!
//! Only a store that could not connect at start-up is wrapped: one that did
//! is used directly, so the common case pays nothing for this.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

use crate::model::{
    IdentityClaim, LockoutPolicy, LockoutStatus, OutboxRecord, RateLimit, RotateOutcome,
    RotateRequest, SessionId, SessionRecord, SigningKeyRecord, UserId, UserRecord,
};
use crate::{StoreError, StoreResult, TokenStore, UserStore};

/// A store installed once, later.
pub struct Late<S: ?Sized> {
    name: &'static str,
    cell: OnceLock<Arc<S>>,
}

impl<S: ?Sized> std::fmt::Debug for Late<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Late")
            .field("name", &self.name)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl<S: ?Sized> Late<S> {
    /// A store named `name` (in errors) that is not connected yet.
    pub fn new(name: &'static str) -> Late<S> {
        Late {
            name,
            cell: OnceLock::new(),
        }
    }

    /// Installs the connected store. Only the first call counts.
    pub fn install(&self, store: Arc<S>) {
        let _ = self.cell.set(store);
    }

    /// Whether the store is installed.
    pub fn is_connected(&self) -> bool {
        self.cell.get().is_some()
    }

    fn get(&self) -> StoreResult<&S> {
        self.cell
            .get()
            .map(|s| &**s)
            .ok_or_else(|| StoreError::Unavailable(format!("{}: not connected yet", self.name)))
    }
}

#[async_trait]
impl UserStore for Late<dyn UserStore> {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        self.get()?.create_user(user).await
    }

    async fn find_user_id_by_email(&self, email: &str) -> StoreResult<Option<UserId>> {
        self.get()?.find_user_id_by_email(email).await
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.get()?.get_user(id).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityClaim>> {
        self.get()?.find_identity(provider, subject).await
    }

    async fn claim_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
        now_ms: u64,
    ) -> StoreResult<IdentityClaim> {
        self.get()?
            .claim_identity(provider, subject, user, now_ms)
            .await
    }

    async fn release_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
    ) -> StoreResult<bool> {
        self.get()?.release_identity(provider, subject, user).await
    }

    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> StoreResult<()> {
        self.get()?.update_user(user, expected_version).await
    }

    async fn update_user_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.get()?
            .update_user_with_mail(user, expected_version, mail)
            .await
    }

    async fn change_email(&self, user: &UserRecord, expected_version: u64) -> StoreResult<()> {
        self.get()?.change_email(user, expected_version).await
    }

    async fn change_email_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.get()?
            .change_email_with_mail(user, expected_version, mail)
            .await
    }

    async fn due_mail(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<OutboxRecord>> {
        self.get()?.due_mail(now_ms, limit).await
    }

    async fn claim_mail(
        &self,
        mail: &OutboxRecord,
        now_ms: u64,
        until_ms: u64,
    ) -> StoreResult<bool> {
        self.get()?.claim_mail(mail, now_ms, until_ms).await
    }

    async fn retry_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        self.get()?.retry_mail(mail).await
    }

    async fn delete_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        self.get()?.delete_mail(mail).await
    }

    async fn outbox_len(&self) -> StoreResult<Option<u64>> {
        self.get()?.outbox_len().await
    }

    async fn scan_users(
        &self,
        after: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        self.get()?.scan_users(after, limit).await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.get()?.ping().await
    }

    fn nodes(&self) -> Option<crate::model::NodeCount> {
        self.cell.get().and_then(|s| s.nodes())
    }

    fn is_broken(&self) -> bool {
        self.cell.get().is_some_and(|s| s.is_broken())
    }

    async fn flush(&self) -> StoreResult<()> {
        match self.cell.get() {
            Some(s) => s.flush().await,
            None => Ok(()),
        }
    }
}

#[async_trait]
impl TokenStore for Late<dyn TokenStore> {
    /// Only shared (remote) stores are connected late; they are never the
    /// only writer.
    fn is_local_authority(&self) -> bool {
        false
    }

    async fn create_session(
        &self,
        session: &SessionRecord,
        max_sessions: usize,
    ) -> StoreResult<Vec<SessionId>> {
        self.get()?.create_session(session, max_sessions).await
    }

    async fn stash(
        &self,
        key: &[u8; 32],
        value: &[u8],
        now_ms: u64,
        expires_at_ms: u64,
    ) -> StoreResult<bool> {
        self.get()?.stash(key, value, now_ms, expires_at_ms).await
    }

    async fn take_stashed(&self, key: &[u8; 32], now_ms: u64) -> StoreResult<Option<Vec<u8>>> {
        self.get()?.take_stashed(key, now_ms).await
    }

    async fn get_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        self.get()?.get_session(user_id, session_id, now_ms).await
    }

    async fn list_sessions(&self, user_id: UserId, now_ms: u64) -> StoreResult<Vec<SessionRecord>> {
        self.get()?.list_sessions(user_id, now_ms).await
    }

    async fn delete_session(&self, user_id: UserId, session_id: SessionId) -> StoreResult<bool> {
        self.get()?.delete_session(user_id, session_id).await
    }

    async fn delete_all_sessions(&self, user_id: UserId) -> StoreResult<Vec<SessionId>> {
        self.get()?.delete_all_sessions(user_id).await
    }

    async fn rotate_refresh(&self, request: &RotateRequest) -> StoreResult<RotateOutcome> {
        self.get()?.rotate_refresh(request).await
    }

    async fn refresh_chain_key(&self, candidate: [u8; 32]) -> StoreResult<[u8; 32]> {
        self.get()?.refresh_chain_key(candidate).await
    }

    async fn lockout_status(&self, key: &str, now_ms: u64) -> StoreResult<LockoutStatus> {
        self.get()?.lockout_status(key, now_ms).await
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now_ms: u64,
        policy: &LockoutPolicy,
    ) -> StoreResult<LockoutStatus> {
        self.get()?.record_login_failure(key, now_ms, policy).await
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        self.get()?.clear_login_failures(key).await
    }

    async fn rate_limit(
        &self,
        key: &str,
        now_ms: u64,
        limit: &RateLimit,
    ) -> StoreResult<Option<u64>> {
        self.get()?.rate_limit(key, now_ms, limit).await
    }

    async fn load_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.get()?.load_signing_keys().await
    }

    async fn save_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.get()?.save_signing_key(key).await
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        self.get()?.delete_signing_key(kid).await
    }

    async fn purge_expired(&self, now_ms: u64) -> StoreResult<u64> {
        self.get()?.purge_expired(now_ms).await
    }

    async fn session_count_estimate(&self) -> StoreResult<Option<u64>> {
        self.get()?.session_count_estimate().await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.get()?.ping().await
    }

    fn is_broken(&self) -> bool {
        self.cell.get().is_some_and(|s| s.is_broken())
    }

    async fn flush(&self) -> StoreResult<()> {
        match self.cell.get() {
            Some(s) => s.flush().await,
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::EmbeddedStore;

    #[tokio::test]
    async fn fails_as_unavailable_until_installed_then_forwards() {
        let users: Late<dyn UserStore> = Late::new("users");
        let tokens: Late<dyn TokenStore> = Late::new("tokens");
        let e = users.get_user(UserId([1; 16])).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("users: not connected yet"), "{e}");
        assert!(users.ping().await.is_err() && tokens.ping().await.is_err());
        assert!(tokens.load_signing_keys().await.unwrap_err().is_transient());
        assert!(!users.is_broken() && !tokens.is_broken());
        // Flushing what never connected has nothing to do.
        users.flush().await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        users.install(store.clone());
        tokens.install(store.clone());
        assert!(users.is_connected() && tokens.is_connected());
        users.ping().await.unwrap();
        tokens.ping().await.unwrap();
        let u = crate::conformance::sample_user(7, "late@example.com");
        users.create_user(&u).await.unwrap();
        assert_eq!(
            users
                .find_user_id_by_email("late@example.com")
                .await
                .unwrap(),
            Some(u.id)
        );
        assert!(tokens.load_signing_keys().await.unwrap().is_empty());
        // Still shared-store semantics: never the local authority.
        assert!(!tokens.is_local_authority());
    }
}
