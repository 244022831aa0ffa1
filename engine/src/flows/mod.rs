//! The auth flows. Each runs inside the partition that serializes it and
//! answers through its [`Responder`](crate::command::Responder).
//!
//! | flow | partition |
//! | --- | --- |
//! | register | email |
//! | login | email, then user (issue the session, upgrade the hash) |
//! | refresh, logout, logout-all, me, profile, sessions, revoke | user |
//! | email verification (request, confirm) | user |
//! | password forgot | email, then user; password reset, change | user |
//! | email change (request, confirm) | user (the store arbitrates the address) |
//! | TOTP enroll, confirm, disable, login second step | user |

pub(crate) mod account;
pub(crate) mod email_change;
pub(crate) mod login;
pub(crate) mod mfa;
pub(crate) mod oauth;
pub(crate) mod password;
pub(crate) mod refresh;
pub(crate) mod register;
pub(crate) mod verify;

use std::sync::Arc;

use portcullis_storage::{SessionId, SessionRecord, UserId};

use crate::command::{ClientInfo, TokenGrant};
use crate::core::Core;
use crate::error::{AuthError, TokenProblem};
use crate::readmodel::Known;
use crate::tokens::VerifiedAccess;

/// Longest user agent kept with a session.
const USER_AGENT_MAX_CHARS: usize = 256;

/// Admits the request under the per-address limit shared by every pod
/// (a Redis Cluster token store), after the edge's in-process limiter.
/// Does nothing with a local store or without a client address.
pub(crate) async fn shared_rate_limit(
    core: &Core,
    route: &'static str,
    client: &ClientInfo,
) -> Result<(), AuthError> {
    let (Some(limit), Some(ip)) = (core.cfg.shared_rate_limit, client.ip) else {
        return Ok(());
    };
    if core.tokens.is_local_authority() {
        return Ok(());
    }
    let key = format!("{route}:{}", crate::domain::rate_limit_key(ip));
    let wait = core
        .token_op(
            "rate_limit",
            core.tokens.rate_limit(&key, core.now_ms(), &limit),
        )
        .await
        .map_err(|e| AuthError::from_store("rate_limit", e))?;
    match wait {
        None => Ok(()),
        Some(ms) => {
            metrics::counter!(crate::metrics::SHARED_RATE_LIMITED_TOTAL, "route" => route)
                .increment(1);
            Err(AuthError::RateLimited {
                retry_after_secs: ms.div_ceil(1000).max(1),
            })
        }
    }
}

/// Checks that a verified access token's session is still live (the read
/// model when it knows, else the store) and returns it when read.
pub(crate) async fn authorize(core: &Core, access: &VerifiedAccess) -> Result<(), AuthError> {
    let now = core.now_ms();
    match core.read.session(access.user_id, access.session_id, now) {
        Known::Live => return Ok(()),
        Known::Revoked => return Err(AuthError::Unauthenticated(TokenProblem::Revoked)),
        Known::Unknown => {}
    }
    let session = core
        .token_op(
            "get_session",
            core.tokens
                .get_session(access.user_id, access.session_id, now),
        )
        .await
        .map_err(|e| AuthError::from_store("get_session", e))?;
    match session {
        Some(s) => {
            core.read.put_session(&s, now);
            Ok(())
        }
        None => {
            core.read.revoke_session(access.user_id, access.session_id);
            Err(AuthError::Unauthenticated(TokenProblem::Revoked))
        }
    }
}

/// Ends a session: tombstone in the read model first (so nothing cached
/// outlives the delete, even if this operation is abandoned), then the store
/// delete. Counts the revocation under `reason` when the session existed.
pub(crate) async fn end_session(
    core: &Core,
    user_id: UserId,
    session_id: SessionId,
    reason: &'static str,
) -> Result<bool, AuthError> {
    core.read.revoke_session(user_id, session_id);
    let existed = core
        .token_op(
            "delete_session",
            core.tokens.delete_session(user_id, session_id),
        )
        .await
        .map_err(|e| AuthError::from_store("delete_session", e))?;
    if existed {
        metrics::counter!(crate::metrics::SESSIONS_REVOKED_TOTAL, "reason" => reason).increment(1);
    }
    Ok(existed)
}

/// Opens a session for `user_id`, authenticated now with the methods `amr`
/// (kept for the session's whole life), and issues its tokens. Past the
/// per-user cap, the least recently used sessions end.
///
/// With `epoch` (a sign-in that checked a credential earlier, in another
/// step), the session is written first and the account's credentials epoch
/// read after: if a credential event (password reset or change,
/// logout-all, ...) moved it since the credential was checked, the new
/// session is ended again and the sign-in refused. The event bumps the
/// epoch before it ends sessions, so either this check sees the new epoch
/// or the event's revocation sees this session: no session opened on
/// replaced credentials survives, on any pod.
/// Refuses (503) a flow that must end sessions or open one when the token
/// store is not in a state to do it: its last ping failed (every 5 s), or,
/// after a start-up without it, its signing keys or chain key are not set up
/// yet. Checked before the flow writes the user record, so that it does not
/// change credentials whose sessions it then cannot end, or create an
/// account whose registration then answers 503.
pub(crate) fn require_token_store(core: &Core) -> Result<(), AuthError> {
    let up = core
        .token_store_up
        .load(std::sync::atomic::Ordering::Acquire)
        && core.token_svc.has_keys()
        && core.token_svc.chain().is_ok();
    if up {
        Ok(())
    } else {
        Err(AuthError::Unavailable {
            retry_after_secs: 1,
        })
    }
}

pub(crate) async fn open_session(
    core: &Arc<Core>,
    user_id: UserId,
    client: &ClientInfo,
    amr: &[&str],
    epoch: Option<u64>,
) -> Result<TokenGrant, AuthError> {
    let now = core.now_ms();
    // No session is written that no access token could come with.
    if !core.token_svc.can_sign(now) {
        return Err(AuthError::Unavailable {
            retry_after_secs: 1,
        });
    }
    let sid = core.token_svc.new_session_id()?;
    let (refresh_token, hash) = core.token_svc.first_refresh(user_id, sid)?;
    let ttl = ms(core.cfg.refresh_ttl);
    let max = now.saturating_add(ms(core.cfg.session_max_age));
    let session = SessionRecord {
        user_id,
        id: sid,
        created_at_ms: now,
        last_used_at_ms: now,
        expires_at_ms: now.saturating_add(ttl).min(max),
        max_expires_at_ms: max,
        ip: client.ip.map(|ip| ip.to_string()),
        user_agent: client
            .user_agent
            .as_ref()
            .map(|ua| ua.chars().take(USER_AGENT_MAX_CHARS).collect()),
        refresh_hash: hash,
        generation: 0,
        rotated_at_ms: now,
        amr: amr.iter().map(|m| (*m).to_owned()).collect(),
        auth_time_ms: now,
    };
    let evicted = core
        .token_op(
            "create_session",
            core.tokens
                .create_session(&session, core.cfg.max_sessions_per_user),
        )
        .await
        .map_err(|e| AuthError::from_store("create_session", e))?;
    for old in &evicted {
        core.read.revoke_session(user_id, *old);
    }
    if !evicted.is_empty() {
        metrics::counter!(crate::metrics::SESSIONS_REVOKED_TOTAL, "reason" => "cap")
            .increment(evicted.len() as u64);
    }
    if let Some(expected) = epoch {
        let current = load_user(core, user_id).await?;
        if current.account.credentials_epoch != expected {
            end_session(core, user_id, sid, "stale_credentials").await?;
            tracing::info!(user_id = %user_id, "sign-in refused: the credentials changed while it was checked");
            return Err(AuthError::InvalidCredentials);
        }
    }
    core.read.put_session(&session, now);
    let access = core
        .token_svc
        .issue_access(user_id, sid, now, &session.amr, now)?;
    Ok(TokenGrant {
        access_token: access.token,
        expires_in: access.expires_in,
        refresh_token,
        refresh_expires_in: (session.expires_at_ms - now) / 1000,
        session_id: sid.to_b64(),
        device_token: None,
    })
}

pub(crate) fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Ids of queued messages a record lists at most; older ones are dropped
/// from the list (their messages were long delivered or given up).
const OUTBOX_IDS_KEPT: usize = 16;

/// Seals `letter` into an outbox message due now and lists its id in
/// `user`'s record; the caller writes both with `update_user_with_mail`.
pub(crate) fn queue_letter(
    core: &Core,
    user: &mut portcullis_storage::UserRecord,
    letter: &crate::mail::Letter,
) -> Result<portcullis_storage::OutboxRecord, AuthError> {
    use ring::rand::SecureRandom as _;
    outbox_has_room(core)?;
    let now = core.now_ms();
    let mut random = [0u8; 10];
    core.token_svc
        .rng()
        .fill(&mut random)
        .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
    // A UUIDv7 from the injected clock: time-ordered outbox ids.
    let id = *uuid::Builder::from_unix_timestamp_millis(now, &random)
        .into_uuid()
        .as_bytes();
    let payload = letter
        .seal(&core.mailer.keys, &id)
        .map_err(|e| AuthError::Internal(format!("sealing a letter: {e}")))?;
    let outbox = &mut user.account.outbox;
    outbox.push(id);
    if outbox.len() > OUTBOX_IDS_KEPT {
        outbox.drain(..outbox.len() - OUTBOX_IDS_KEPT);
    }
    Ok(portcullis_storage::OutboxRecord {
        id,
        user_id: user.id,
        created_at_ms: now,
        due_at_ms: now,
        attempts: 0,
        payload,
    })
}

/// The outbox is bounded: past the bound, flows that send mail wait (503)
/// until the mailer catches up, and an alert says why.
pub(crate) fn outbox_has_room(core: &Core) -> Result<(), AuthError> {
    if core.outbox_len.load(std::sync::atomic::Ordering::Relaxed) >= core.cfg.account.outbox_max {
        tracing::warn!("the outbox is full; a flow that sends mail was refused");
        return Err(AuthError::Unavailable {
            retry_after_secs: 30,
        });
    }
    Ok(())
}

/// The link to `page` carrying `token`, under the configured public base URL.
pub(crate) fn mail_link(core: &Core, page: &str, token: &str) -> String {
    let base = core
        .cfg
        .account
        .public_base_url
        .as_deref()
        .unwrap_or(&core.cfg.issuer)
        .trim_end_matches('/');
    format!("{base}/{page}?token={token}")
}

/// Ends every session of `user` but `keep`, counting them under `reason`.
/// Cached liveness is tombstoned before the store forgets a session, so no
/// pod's cache outlives the delete.
pub(crate) async fn revoke_all_sessions(
    core: &Core,
    user: UserId,
    keep: Option<SessionId>,
    reason: &'static str,
) -> Result<u64, AuthError> {
    let live = core
        .token_op("list_sessions", core.tokens.list_sessions(user, 0))
        .await
        .map_err(|e| AuthError::from_store("list_sessions", e))?;
    for s in live.iter().filter(|s| Some(s.id) != keep) {
        core.read.revoke_session(user, s.id);
    }
    let ended = match keep {
        None => {
            let ids = core
                .token_op("delete_all_sessions", core.tokens.delete_all_sessions(user))
                .await
                .map_err(|e| AuthError::from_store("delete_all_sessions", e))?;
            for sid in &ids {
                core.read.revoke_session(user, *sid);
            }
            ids.len() as u64
        }
        Some(keep) => {
            let mut n = 0;
            for s in live.iter().filter(|s| s.id != keep) {
                if core
                    .token_op("delete_session", core.tokens.delete_session(user, s.id))
                    .await
                    .map_err(|e| AuthError::from_store("delete_session", e))?
                {
                    n += 1;
                }
            }
            n
        }
    };
    metrics::counter!(crate::metrics::SESSIONS_REVOKED_TOTAL, "reason" => reason).increment(ended);
    Ok(ended)
}

/// Counts an attempt at a secret guarded by counter `key` as a failure
/// before the secret is checked, in one atomic store operation; a success
/// clears it ([`clear_lockout`]). An attempt that took the last allowed
/// failure is still checked, and clears the lock if the secret is right;
/// one made while the key was already locked (failures 0) is refused
/// unchecked. Only attempts the hash pool has already taken get here:
/// refusals for load (503) or rate (429) never count.
pub(crate) async fn count_attempt(
    core: &Core,
    key: &str,
    policy: &portcullis_storage::LockoutPolicy,
) -> Result<portcullis_storage::LockoutStatus, AuthError> {
    let now = core.now_ms();
    let attempt = core
        .token_op(
            "record_login_failure",
            core.tokens.record_login_failure(key, now, policy),
        )
        .await
        .map_err(|e| AuthError::from_store("record_login_failure", e))?;
    if let Some(until) = attempt.locked_until_ms
        && attempt.failures == 0
    {
        return Err(AuthError::TooManyAttempts {
            retry_after_secs: until.saturating_sub(now).div_ceil(1000).max(1),
        });
    }
    Ok(attempt)
}

/// Refuses at once while counter `key` is locked, without counting.
pub(crate) async fn refuse_if_locked(core: &Core, key: &str) -> Result<(), AuthError> {
    let now = core.now_ms();
    let status = core
        .token_op("lockout_status", core.tokens.lockout_status(key, now))
        .await
        .map_err(|e| AuthError::from_store("lockout_status", e))?;
    match status.locked_until_ms {
        Some(until) if until > now => Err(AuthError::TooManyAttempts {
            retry_after_secs: until.saturating_sub(now).div_ceil(1000).max(1),
        }),
        _ => Ok(()),
    }
}

/// Lockout counter of password failures of `email` from one client address.
pub(crate) fn pair_key(email: &str, client: &ClientInfo) -> String {
    match client.ip {
        Some(ip) => format!("p:{email}|{}", crate::domain::rate_limit_key(ip)),
        None => format!("p:{email}|-"),
    }
}

/// Lockout counter of password failures of `email` from clients without a
/// valid device token.
pub(crate) fn account_key(email: &str) -> String {
    format!("a:{email}")
}

/// Lockout counter of one device token.
pub(crate) fn device_key(device: &crate::tokens::device::Device) -> String {
    use base64::Engine as _;
    format!(
        "d:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(device.device_id)
    )
}

/// Lockout counter of second-factor failures of a user.
pub(crate) fn mfa_key(user: UserId) -> String {
    format!("m:{user}")
}

/// Which counters a password attempt was counted on.
pub(crate) enum PasswordCounters {
    /// A client presenting a valid device token: only its own counter.
    Device(String),
    /// Any other client: its (account, address) pair before the check, and
    /// the account-wide counter of untrusted clients after a failure.
    Untrusted { pair: String, account: String },
}

/// Before a password of the account `email` is checked: refuses a locked
/// client (the device, or the pair and the account-wide lock of untrusted
/// clients) and counts the attempt as a failure of the device or the pair.
pub(crate) async fn guard_password(
    core: &Core,
    email: &str,
    client: &ClientInfo,
    device: Option<&crate::tokens::device::Device>,
) -> Result<PasswordCounters, AuthError> {
    if let Some(d) = device {
        let key = device_key(d);
        count_attempt(core, &key, &core.cfg.lockout).await?;
        return Ok(PasswordCounters::Device(key));
    }
    let account = account_key(email);
    refuse_if_locked(core, &account).await?;
    let pair = pair_key(email, client);
    count_attempt(core, &pair, &core.cfg.lockout).await?;
    Ok(PasswordCounters::Untrusted { pair, account })
}

/// After the check: a right password clears the device's or the pair's
/// counter (the account-wide one runs out with its window); a wrong one
/// from an untrusted client also counts toward the account-wide lock.
/// Counted after the check, that lock can overshoot by the attempts in
/// flight at once: at most one per pod, since a pod runs an account's
/// logins one at a time.
pub(crate) async fn settle_password(
    core: &Core,
    counters: &PasswordCounters,
    ok: bool,
) -> Result<(), AuthError> {
    match (counters, ok) {
        (PasswordCounters::Device(key), true)
        | (PasswordCounters::Untrusted { pair: key, .. }, true) => clear_lockout(core, key).await,
        (PasswordCounters::Device(_), false) => Ok(()),
        (PasswordCounters::Untrusted { account, .. }, false) => {
            let now = core.now_ms();
            let status = core
                .token_op(
                    "record_login_failure",
                    core.tokens
                        .record_login_failure(account, now, &core.cfg.account_lockout),
                )
                .await
                .map_err(|e| AuthError::from_store("record_login_failure", e))?;
            if status.locked_until_ms.is_some() && status.failures > 0 {
                tracing::warn!(
                    "account locked for clients without a device token after repeated failures"
                );
            }
            Ok(())
        }
    }
}

/// A password reset or change: [`credential_event`], and device tokens
/// issued before stop counting (whoever had the old password may hold one).
pub(crate) fn password_event(user: &mut portcullis_storage::UserRecord) {
    credential_event(user);
    user.account.device_epoch = user.account.device_epoch.wrapping_add(1);
}

/// A credential event (password reset or change, email change confirmed,
/// MFA turned on or off): every pending single-use token of the account is
/// void, and the credentials epoch moves on, so sign-ins that checked the
/// old credentials open no session.
pub(crate) fn credential_event(user: &mut portcullis_storage::UserRecord) {
    let a = &mut user.account;
    a.verify_email = None;
    a.password_reset = None;
    a.email_change = None;
    a.mfa_login = None;
    a.credentials_epoch = a.credentials_epoch.wrapping_add(1);
}

/// Admits one more message of `flow` for `user` (when known) to `address`
/// under every mail limit, per account and per recipient address, across
/// every pod; 429 `too_many_requests` otherwise. The address is hashed into
/// the limiter's key.
pub(crate) async fn mail_allowed(
    core: &Core,
    flow: &'static str,
    user: Option<UserId>,
    address: &str,
) -> Result<(), AuthError> {
    // A full outbox refuses before any budget is spent.
    outbox_has_room(core)?;
    let addr = hex_digest(mailbox(address).as_bytes());
    for (i, limit) in core.cfg.account.mail_limits.iter().enumerate() {
        if let Some(u) = user {
            limited(core, &format!("mail:{flow}:{i}:u:{u}"), limit).await?;
        }
        limited(core, &format!("mail:{flow}:{i}:a:{addr}"), limit).await?;
    }
    Ok(())
}

/// The mailbox an address delivers to, as far as limits go: the local
/// part without a `+tag` (`ada+1@x` and `ada+2@x` are one mailbox).
fn mailbox(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => address.to_owned(),
    }
}

/// Queues a security notice (`letter`) with `user`'s record, under the
/// mail limits of its `kind` (each kind of notice is a flow of its own): when the limits or the outbox bound
/// refuse it, the notice is left out (the change it reports goes ahead; a
/// notice of the same kind went out moments ago, or the outbox is full and
/// alerting) rather than failing the change.
pub(crate) async fn notice(
    core: &Core,
    kind: &'static str,
    user: &mut portcullis_storage::UserRecord,
    letter: &crate::mail::Letter,
) -> Result<Vec<portcullis_storage::OutboxRecord>, AuthError> {
    match mail_allowed(core, kind, Some(user.id), &letter.to).await {
        Ok(()) => {}
        Err(AuthError::TooManyRequests { .. }) => {
            tracing::info!(user_id = %user.id, "security notice left out: one went out moments ago");
            return Ok(Vec::new());
        }
        Err(AuthError::Unavailable { .. }) if outbox_has_room(core).is_err() => {
            tracing::warn!(user_id = %user.id, "security notice left out: the outbox is full");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    }
    match queue_letter(core, user, letter) {
        Ok(m) => Ok(vec![m]),
        Err(AuthError::Unavailable { .. }) => {
            tracing::warn!(user_id = %user.id, "security notice left out: the outbox is full");
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Admits one more request of `route` for `user` under `limit` (none: no
/// limit), across every pod; 429 `too_many_requests` otherwise.
pub(crate) async fn account_limit(
    core: &Core,
    route: &'static str,
    user: UserId,
    limit: Option<portcullis_storage::RateLimit>,
) -> Result<(), AuthError> {
    match limit {
        Some(l) => limited(core, &format!("acct:{route}:{user}"), &l).await,
        None => Ok(()),
    }
}

async fn limited(
    core: &Core,
    key: &str,
    limit: &portcullis_storage::RateLimit,
) -> Result<(), AuthError> {
    let wait = core
        .token_op(
            "rate_limit",
            core.tokens.rate_limit(key, core.now_ms(), limit),
        )
        .await
        .map_err(|e| AuthError::from_store("rate_limit", e))?;
    match wait {
        None => Ok(()),
        Some(ms) => {
            metrics::counter!(crate::metrics::ACCOUNT_RATE_LIMITED_TOTAL).increment(1);
            Err(AuthError::TooManyRequests {
                retry_after_secs: ms.div_ceil(1000).max(1),
            })
        }
    }
}

/// The first 16 bytes of SHA-256 of `data`, in hex (limiter keys name no
/// address or email in clear).
fn hex_digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `updated` as the successor of `current` (version + 1), queuing
/// `mail` in the same write, and refreshes the cached view. A
/// `VersionConflict` is the caller's to handle.
pub(crate) async fn save_user(
    core: &Core,
    current: &portcullis_storage::UserRecord,
    updated: &mut portcullis_storage::UserRecord,
    mail: &[portcullis_storage::OutboxRecord],
) -> Result<(), portcullis_storage::StoreError> {
    // Every write moves the record's secrets to the newest data key.
    if let Err(e) = reseal_stale(core, updated) {
        tracing::warn!(user_id = %updated.id, error = %e, "could not re-seal a secret under the newest data key");
    }
    updated.version = current.version + 1;
    updated.updated_at_ms = core.now_ms();
    core.user_op(
        "update_user_with_mail",
        core.users
            .update_user_with_mail(updated, current.version, mail),
    )
    .await?;
    core.read.put_user(updated);
    Ok(())
}

/// Re-seals the record's secrets (TOTP secret, recovery codes) that are
/// sealed under an older data key; returns whether anything changed.
pub(crate) fn reseal_stale(
    core: &Core,
    user: &mut portcullis_storage::UserRecord,
) -> Result<bool, crate::datakey::DataKeyError> {
    let keys = &core.mailer.keys;
    let Some(t) = user.account.totp.as_mut() else {
        return Ok(false);
    };
    let mut changed = false;
    if let Some(s) = keys.reseal(&t.secret_sealed, &user.id.0)? {
        t.secret_sealed = s;
        changed = true;
    }
    if !t.recovery_sealed.is_empty()
        && let Some(s) = keys.reseal(&t.recovery_sealed, &mfa::recovery_aad(user.id))?
    {
        t.recovery_sealed = s;
        changed = true;
    }
    // Recovery codes of an enrollment made before they were sealed.
    if !t.recovery_hashes.is_empty() && t.recovery_sealed.is_empty() {
        let plain = zeroize::Zeroizing::new(t.recovery_hashes.concat());
        t.recovery_sealed = keys.seal(&plain, &mfa::recovery_aad(user.id))?;
        t.recovery_hashes.clear();
        changed = true;
    }
    Ok(changed)
}

/// Users read per page of the re-sealing pass.
const RESEAL_PAGE: usize = 256;

/// The background re-sealing pass: visits every user and, in each user's
/// partition, re-seals secrets still under an older data key, so that old
/// keys can be retired. Sets the gauge of records still under old keys
/// (0 once every secret is under the newest key). Returns that count.
pub(crate) async fn reseal_pass(core: &Arc<Core>) -> Result<u64, AuthError> {
    // With one key nothing can be under an older one (recovery codes from
    // before they were sealed are sealed when their record is next written,
    // or by the pass once a second key is configured): no scan.
    if core.mailer.keys.count() < 2 {
        metrics::gauge!(crate::metrics::DATAKEY_OLD_RECORDS).set(0.0);
        return Ok(0);
    }
    let mut after = None;
    let mut left = 0u64;
    let mut resealed = 0u64;
    loop {
        let page = core
            .user_op("scan_users", core.users.scan_users(after, RESEAL_PAGE))
            .await
            .map_err(|e| AuthError::from_store("scan_users", e))?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in page.iter().filter(|u| has_stale_secret(core, u)) {
            let c = core.clone();
            let id = u.id;
            let done = core
                .call_in(crate::shard::PartitionKey::User(id), async move {
                    let current = load_user(&c, id).await?;
                    if !has_stale_secret(&c, &current) {
                        return Ok(false);
                    }
                    let mut updated = current.clone();
                    save_user(&c, &current, &mut updated, &[])
                        .await
                        .map_err(|e| AuthError::from_store("update_user", e))?;
                    Ok::<bool, AuthError>(!has_stale_secret(&c, &updated))
                })
                .await;
            match done {
                Ok(Ok(true)) => {
                    resealed += 1;
                    metrics::counter!(crate::metrics::DATAKEY_RESEALED_TOTAL).increment(1);
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) | Err(e) => {
                    left += 1;
                    tracing::warn!(user_id = %id, error = %e, "re-sealing a user's secrets failed; retried at the next pass");
                }
            }
        }
    }
    metrics::gauge!(crate::metrics::DATAKEY_OLD_RECORDS).set(left as f64);
    if resealed > 0 || left > 0 {
        tracing::info!(resealed, left, "data-key re-sealing pass done");
    }
    Ok(left)
}

/// Whether the record holds a secret sealed under an older data key.
pub(crate) fn has_stale_secret(core: &Core, user: &portcullis_storage::UserRecord) -> bool {
    let keys = &core.mailer.keys;
    user.account.totp.as_ref().is_some_and(|t| {
        keys.is_stale(&t.secret_sealed)
            || (!t.recovery_sealed.is_empty() && keys.is_stale(&t.recovery_sealed))
            || (!t.recovery_hashes.is_empty() && t.recovery_sealed.is_empty())
    })
}

/// The bearer's record; a user deleted since the token was issued is a
/// revoked token.
pub(crate) async fn load_user(
    core: &Core,
    id: UserId,
) -> Result<portcullis_storage::UserRecord, AuthError> {
    core.user_op("get_user", core.users.get_user(id))
        .await
        .map_err(|e| AuthError::from_store("get_user", e))?
        .ok_or(AuthError::Unauthenticated(TokenProblem::Revoked))
}

/// Forgets the failed attempts of `key` (after a secret was right).
pub(crate) async fn clear_lockout(core: &Core, key: &str) -> Result<(), AuthError> {
    core.token_op(
        "clear_login_failures",
        core.tokens.clear_login_failures(key),
    )
    .await
    .map_err(|e| AuthError::from_store("clear_login_failures", e))
}

/// Lockout counter of password re-entries within one session (password or
/// email change, MFA changes).
pub(crate) fn session_key(session: SessionId) -> String {
    format!("s:{session}")
}

/// Re-verifies the signed-in `user`'s password in a reserved hash slot.
/// Counted per session (a signed-in client already proved the password
/// once; the account-wide lock of untrusted clients does not bind it): five
/// wrong passwords lock the session's re-entries with backoff.
pub(crate) async fn reverify_password(
    core: &Core,
    user: &portcullis_storage::UserRecord,
    password: crate::domain::Password,
    session: SessionId,
    slot: crate::hashpool::HashSlot,
) -> Result<(), AuthError> {
    let key = session_key(session);
    count_attempt(core, &key, &core.cfg.lockout).await?;
    let verified = slot
        .verify(password.into_secret(), &user.password_hash)
        .await?;
    if !verified.ok {
        return Err(AuthError::InvalidCredentials);
    }
    clear_lockout(core, &key).await
}

/// Issues a single-use token of `purpose` for `user`, valid for `ttl`.
pub(crate) fn issue_token(
    core: &Core,
    purpose: crate::tokens::onetime::Purpose,
    user: UserId,
    ttl: std::time::Duration,
) -> Result<crate::tokens::onetime::Issued, AuthError> {
    crate::tokens::onetime::issue(purpose, user, core.now_ms(), ms(ttl), core.token_svc.rng())
        .map_err(|_| AuthError::Internal("system random generator failed".into()))
}
