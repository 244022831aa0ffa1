//! The storage traits. Each backend implements both; the engine chooses the
//! implementations once, at start-up, from configuration.

use async_trait::async_trait;

use crate::StoreResult;
use crate::model::{
    IdentityClaim, LockoutPolicy, LockoutStatus, OutboxRecord, RateLimit, RotateOutcome,
    RotateRequest, SessionId, SessionRecord, SigningKeyRecord, UserId, UserRecord,
};

/// Users: the email partition (`normalized email -> user id`) and the user
/// partition (`user id -> credential, profile, status`).
///
/// Acknowledged writes are durable: when a write method returns `Ok`, the
/// change survives a crash of the process.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Creates the user and claims its email atomically.
    ///
    /// Fails with [`StoreError::EmailTaken`](crate::StoreError::EmailTaken) when the
    /// email already belongs to a user; nothing is written then.
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()>;

    /// Resolves a normalized email to its user id. After an interrupted email
    /// change a backend may still resolve the old email to the user for a
    /// while: callers compare the record's email with the one they looked up.
    async fn find_user_id_by_email(&self, email: &str) -> StoreResult<Option<UserId>>;

    /// Reads a user by id.
    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>>;

    /// Replaces a user record if its stored version is still `expected_version`.
    /// `user.version` must be `expected_version + 1`. The email must not change
    /// (email changes move the index and have their own operation).
    ///
    /// Fails with `VersionConflict` when the stored version differs and with
    /// `NotFound` when there is no such user.
    async fn update_user(&self, user: &UserRecord, expected_version: u64) -> StoreResult<()> {
        self.update_user_with_mail(user, expected_version, &[])
            .await
    }

    /// [`UserStore::update_user`], queuing `mail` in the outbox with it: the
    /// record changes and the messages are queued, or (on any definite
    /// failure) neither. `user.account.outbox` lists each message's id; a
    /// backend that cannot write both atomically queues the messages first,
    /// and the mailer delivers only those the record lists.
    async fn update_user_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()>;

    /// Replaces a user record *and its email* if its stored version is still
    /// `expected_version`: the new email is claimed before the record changes
    /// and the old one is released after, so at no moment can another user
    /// take either, and a lookup of the new email finds the user only once
    /// the record carries it. `user.version` must be `expected_version + 1`.
    ///
    /// Fails with `EmailTaken` when another user owns the new email,
    /// `VersionConflict` when the stored version differs and `NotFound` when
    /// there is no such user; nothing changes then.
    async fn change_email(&self, user: &UserRecord, expected_version: u64) -> StoreResult<()> {
        self.change_email_with_mail(user, expected_version, &[])
            .await
    }

    /// [`UserStore::change_email`], queuing `mail` as
    /// [`UserStore::update_user_with_mail`] does.
    async fn change_email_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()>;

    /// Who holds the identity (`provider`, `subject`) in the identity
    /// index. The index alone does not make a link: callers check that the
    /// holder's record lists the identity ([`AccountState::identities`]);
    /// a claim whose record does not was left by an interrupted sign-up or
    /// link, and its `claimed_at_ms` tells how old it is.
    ///
    /// [`AccountState::identities`]: crate::AccountState::identities
    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityClaim>>;

    /// Claims (`provider`, `subject`) for `user` unless another user holds
    /// it, atomically: of two concurrent claims for different users exactly
    /// one wins. Returns the holder afterwards (`user` when it won or held
    /// the identity already).
    async fn claim_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
        now_ms: u64,
    ) -> StoreResult<IdentityClaim>;

    /// Releases (`provider`, `subject`) if `user` holds it (never another
    /// user's claim). Returns whether it did.
    async fn release_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
    ) -> StoreResult<bool>;

    /// Queued messages due at `now_ms` (`due_at_ms <= now_ms`), oldest
    /// first, at most `limit`. Claimed ones may be among them.
    async fn due_mail(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<OutboxRecord>>;

    /// Takes `mail` for delivery until `until_ms`. `false` when another
    /// mailer holds an unexpired claim, or the message is gone.
    async fn claim_mail(
        &self,
        mail: &OutboxRecord,
        now_ms: u64,
        until_ms: u64,
    ) -> StoreResult<bool>;

    /// Stores `mail`'s new `due_at_ms` and `attempts` (a failed attempt)
    /// and releases the claim.
    async fn retry_mail(&self, mail: &OutboxRecord) -> StoreResult<()>;

    /// Removes a delivered or abandoned message.
    async fn delete_mail(&self, mail: &OutboxRecord) -> StoreResult<()>;

    /// About how many messages the outbox holds (for its bound and its
    /// gauge): cheap, not exact. `None` when the backend cannot tell.
    async fn outbox_len(&self) -> StoreResult<Option<u64>> {
        Ok(None)
    }

    /// Up to `limit` users after `after` (from the start when `None`), in
    /// the backend's own stable order, for background maintenance that
    /// visits every user (re-sealing secrets under a new data key). Pass
    /// the last id of a page to get the next; an empty page is the end.
    async fn scan_users(&self, after: Option<UserId>, limit: usize)
    -> StoreResult<Vec<UserRecord>>;

    /// Checks that the backend can serve requests (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// For a cluster: how many of the database nodes this process routes to
    /// it holds a connection to. `None` for a store that is not a cluster.
    /// Cheap and synchronous (the driver's own view, no round trip).
    fn nodes(&self) -> Option<crate::model::NodeCount> {
        None
    }

    /// Whether the backend is in a state it cannot leave without a restart
    /// (liveness), e.g. after a failed fsync. Cheap and synchronous.
    fn is_broken(&self) -> bool {
        false
    }

    /// Makes every acknowledged write durable and releases resources; called at shutdown.
    async fn flush(&self) -> StoreResult<()>;
}

/// Sessions, refresh-token state, login lockout counters and signing keys.
///
/// A session and its refresh-token family are routed by the owning user's id,
/// so every operation touches one user's keys.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Whether this process is the only writer of the store (the embedded backend).
    /// When true, the engine may cache session liveness in memory and trust it.
    fn is_local_authority(&self) -> bool;

    /// Stores a new session (durably). When the user then has more than
    /// `max_sessions` sessions (0: no limit), the least recently used others
    /// are deleted in the same atomic step; their ids are returned.
    async fn create_session(
        &self,
        session: &SessionRecord,
        max_sessions: usize,
    ) -> StoreResult<Vec<SessionId>>;

    /// Reads a session; expired sessions read as `None`.
    async fn get_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: u64,
    ) -> StoreResult<Option<SessionRecord>>;

    /// Lists the user's live sessions, oldest first.
    async fn list_sessions(&self, user_id: UserId, now_ms: u64) -> StoreResult<Vec<SessionRecord>>;

    /// Deletes one session (durably). Returns whether it existed.
    async fn delete_session(&self, user_id: UserId, session_id: SessionId) -> StoreResult<bool>;

    /// Deletes every session of the user atomically (durably). Returns the deleted ids.
    async fn delete_all_sessions(&self, user_id: UserId) -> StoreResult<Vec<SessionId>>;

    /// Replaces a session's current refresh token if it is still the expected
    /// one (compare-and-set, durably).
    async fn rotate_refresh(&self, request: &RotateRequest) -> StoreResult<RotateOutcome>;

    /// The server secret that chains a session's refresh tokens. The first
    /// call stores `candidate`; every call returns the stored secret. Secret:
    /// backends keep it with owner-only access.
    async fn refresh_chain_key(&self, candidate: [u8; 32]) -> StoreResult<[u8; 32]>;

    /// The lockout state of a login key (a normalized email) at `now_ms`.
    async fn lockout_status(&self, key: &str, now_ms: u64) -> StoreResult<LockoutStatus>;

    /// Counts one failed login for `key` atomically and locks the key when the
    /// policy says so. Returns the state afterwards: `failures` counted in the
    /// window including this one, or 0 when the key was already locked (a
    /// failure during a lock is not counted).
    async fn record_login_failure(
        &self,
        key: &str,
        now_ms: u64,
        policy: &LockoutPolicy,
    ) -> StoreResult<LockoutStatus>;

    /// Forgets the failures of `key` (after a successful login).
    async fn clear_login_failures(&self, key: &str) -> StoreResult<()>;

    /// Admits one request under a limit shared by every process using this
    /// store (GCRA), or returns the milliseconds to wait. `key` names the
    /// limiter (what is limited and for whom: a route and a client address,
    /// a flow and an account). Keys are short and carry no personal data in
    /// clear (callers hash addresses and emails).
    async fn rate_limit(
        &self,
        key: &str,
        now_ms: u64,
        limit: &RateLimit,
    ) -> StoreResult<Option<u64>>;

    /// Keeps `value` under `key` until `expires_at_ms`, for one
    /// [`TokenStore::take_stashed`]: the state of a flow that another pod
    /// may finish (a social login's authorize state and its one-time code).
    /// `false`, and nothing written, when the key is held already. Keys are
    /// digests of secrets the client holds; values are sealed by the engine.
    async fn stash(
        &self,
        key: &[u8; 32],
        value: &[u8],
        now_ms: u64,
        expires_at_ms: u64,
    ) -> StoreResult<bool>;

    /// Removes the value under `key` and returns it, unless it expired
    /// before `now_ms`: of concurrent takes of one key, at most one gets it.
    async fn take_stashed(&self, key: &[u8; 32], now_ms: u64) -> StoreResult<Option<Vec<u8>>>;

    /// Every stored signing key.
    async fn load_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;

    /// Stores (or replaces, by `kid`) a signing key durably.
    async fn save_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;

    /// Deletes a signing key by `kid`.
    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()>;

    /// Deletes sessions and lockout entries that expired before `now_ms`.
    /// Returns how many records were removed.
    async fn purge_expired(&self, now_ms: u64) -> StoreResult<u64>;

    /// An estimate of the live sessions in the store, for the
    /// `portcullis_engine_sessions_active` gauge: cheap enough to call every
    /// few seconds, not exact (it may count sessions expired since the last
    /// purge, or come from sampling). `None` when the backend cannot tell.
    async fn session_count_estimate(&self) -> StoreResult<Option<u64>> {
        Ok(None)
    }

    /// Checks that the backend can serve requests (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Whether the backend is in a state it cannot leave without a restart
    /// (liveness), e.g. after a failed fsync. Cheap and synchronous.
    fn is_broken(&self) -> bool {
        false
    }

    /// Makes every acknowledged write durable and releases resources; called at shutdown.
    async fn flush(&self) -> StoreResult<()>;
}
