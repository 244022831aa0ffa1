//! Signing in: a session and its tokens, and the device token a password
//! sign-in returns.

use std::sync::Arc;

use portcullis_storage::{SessionRecord, UserId};
use zeroize::Zeroizing;

use crate::clock::ms;
use crate::core::Core;
use crate::error::AuthError;
use crate::model::{ClientInfo, TokenGrant};
use crate::steps::record::load_user;
use crate::steps::sessions::end_session;

/// Longest user agent kept with a session.
const USER_AGENT_MAX_CHARS: usize = 256;

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

/// A device token for `user` under device `epoch`: the presented device's
/// id when it had a valid one (its counter carries on), else a new device.
pub(crate) fn issue_device_token(
    core: &Core,
    user: UserId,
    epoch: u64,
    device_id: Option<[u8; 16]>,
) -> Result<Zeroizing<String>, AuthError> {
    use ring::rand::SecureRandom as _;
    let device_id = match device_id {
        Some(id) => id,
        None => {
            let mut id = [0u8; 16];
            core.token_svc
                .rng()
                .fill(&mut id)
                .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
            id
        }
    };
    let device = crate::tokens::device::Device {
        user_id: user,
        device_id,
        expires_at_ms: core.now_ms().saturating_add(ms(core.cfg.device_token_ttl)),
        epoch,
    };
    Ok(core.token_svc.device_key()?.issue(&device))
}
