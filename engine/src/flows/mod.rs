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

/// Opens a session for `user_id` and issues its tokens.
pub(crate) async fn open_session(
    core: &Arc<Core>,
    user_id: UserId,
    client: &ClientInfo,
    amr: &[&str],
) -> Result<TokenGrant, AuthError> {
    let now = core.now_ms();
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
    };
    core.token_op("create_session", core.tokens.create_session(&session))
        .await
        .map_err(|e| AuthError::from_store("create_session", e))?;
    core.read.put_session(&session, now);
    let access = core.token_svc.issue_access(user_id, sid, now, amr)?;
    Ok(TokenGrant {
        access_token: access.token,
        expires_in: access.expires_in,
        refresh_token,
        refresh_expires_in: (session.expires_at_ms - now) / 1000,
        session_id: sid.to_b64(),
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

/// Counts an attempt at a secret of `key` (an email) as a failure before the
/// secret is checked, in one atomic store operation; a success clears it
/// (`clear_login_failures`). An attempt that took the last allowed failure
/// is still checked, and clears the lock if the secret is right; one made
/// while the key was already locked (failures 0) is refused unchecked.
pub(crate) async fn count_attempt(
    core: &Core,
    key: &str,
    now: u64,
) -> Result<portcullis_storage::LockoutStatus, AuthError> {
    let attempt = core
        .token_op(
            "record_login_failure",
            core.tokens
                .record_login_failure(key, now, &core.cfg.lockout),
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

/// Writes `updated` as the successor of `current` (version + 1), queuing
/// `mail` in the same write, and refreshes the cached view. A
/// `VersionConflict` is the caller's to handle.
pub(crate) async fn save_user(
    core: &Core,
    current: &portcullis_storage::UserRecord,
    updated: &mut portcullis_storage::UserRecord,
    mail: &[portcullis_storage::OutboxRecord],
) -> Result<(), portcullis_storage::StoreError> {
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

/// Re-verifies `user`'s password on the hash pool, counted toward the
/// lockout like a login attempt.
pub(crate) async fn reverify_password(
    core: &Core,
    user: &portcullis_storage::UserRecord,
    password: crate::domain::Password,
) -> Result<(), AuthError> {
    count_attempt(core, &user.email, core.now_ms()).await?;
    let verified = core
        .hash
        .verify(password.into_secret(), &user.password_hash)
        .await?;
    if !verified.ok {
        return Err(AuthError::InvalidCredentials);
    }
    clear_lockout(core, &user.email).await
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
