//! [`Refresh`]: refresh-token rotation with reuse detection, in the user's
//! partition (or none, with a shared token store: see
//! [`Core::dispatch_unordered`]).
//!
//! The presented token is placed in its session's chain (see
//! `tokens::refresh`): the current token rotates; the direct predecessor
//! within the grace window is refused without harm (a benign concurrent
//! refresh); any other genuine ancestor, however old, is reuse and revokes
//! the session (RFC 9700 §4.14.2); anything else is refused.

use std::sync::Arc;

use portcullis_storage::{RotateOutcome, RotateRequest};
use zeroize::Zeroizing;

use crate::clock::ms;
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::metrics as m;
use crate::model::{ClientInfo, TokenGrant};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::limits::shared_rate_limit;
use crate::steps::sessions::end_session;
use crate::tokens::refresh::{self, Lineage, ParsedRefresh};

/// Rotate a refresh token: a new pair for the presented current one.
pub struct Refresh {
    /// The presented refresh token.
    pub refresh_token: Zeroizing<String>,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for Refresh {
    type Reply = TokenGrant;

    fn submit(self, engine: &Engine, reply: Responder<TokenGrant>) {
        match refresh::parse(&self.refresh_token) {
            None => {
                metrics::counter!(m::REFRESHES_TOTAL, "result" => "invalid").increment(1);
                reply.send(Err(AuthError::InvalidGrant));
            }
            Some(t) => {
                engine
                    .core
                    .dispatch_unordered(PartitionKey::User(t.user_id), reply, move |c| {
                        run(c, t, self.client)
                    })
            }
        }
    }
}

type Failure = (&'static str, AuthError);

/// Runs in `User(token.user_id)`.
async fn run(core: Arc<Core>, token: ParsedRefresh, client: ClientInfo) -> Reply<TokenGrant> {
    let (label, result) = match rotate(&core, &token, &client).await {
        Ok(grant) => ("ok", Ok(grant)),
        Err((label, e)) => (label, Err(e)),
    };
    metrics::counter!(m::REFRESHES_TOTAL, "result" => label).increment(1);
    result
}

fn store_error(op: &'static str) -> impl FnOnce(portcullis_storage::StoreError) -> Failure {
    move |e| ("error", AuthError::from_store(op, e))
}

async fn rotate(
    core: &Arc<Core>,
    token: &ParsedRefresh,
    client: &ClientInfo,
) -> Result<TokenGrant, Failure> {
    shared_rate_limit(core, "refresh", client)
        .await
        .map_err(|e| match e {
            AuthError::RateLimited { .. } => ("rate_limited", e),
            e => ("error", e),
        })?;
    let (uid, sid) = (token.user_id, token.session_id);
    let now = core.now_ms();
    // Whatever happens next, cached liveness must not outlive it, even if
    // this operation is abandoned midway.
    core.read.forget_session(uid, sid);
    let chain = core.token_svc.chain().map_err(|e| ("error", e))?;
    let next = chain.next(sid, token.generation, &token.secret);
    let new_expires_at_ms = now.saturating_add(ms(core.cfg.refresh_ttl));
    // The common case, the current token, is one compare-and-set: if the
    // presented (hash, generation) is the stored one, it rotates.
    let optimistic = RotateRequest {
        user_id: uid,
        session_id: sid,
        expected_hash: refresh::hash_secret(&token.secret),
        expected_generation: token.generation,
        new_hash: refresh::hash_secret(&next),
        now_ms: now,
        new_expires_at_ms,
    };
    match core
        .token_op("rotate_refresh", core.tokens.rotate_refresh(&optimistic))
        .await
        .map_err(store_error("rotate_refresh"))?
    {
        RotateOutcome::Rotated(s) => return grant(core, token, &next, &s, now),
        RotateOutcome::Invalid => return Err(("invalid", AuthError::InvalidGrant)),
        // Not the current token: find out what it is.
        RotateOutcome::Conflict => {}
    }
    let session = core
        .token_op("get_session", core.tokens.get_session(uid, sid, now))
        .await
        .map_err(store_error("get_session"))?
        .ok_or(("invalid", AuthError::InvalidGrant))?;
    match chain.lineage(token, &session.refresh_hash, session.generation) {
        Lineage::Current => {}
        Lineage::Ancestor { rotations } => {
            let grace = ms(core.cfg.refresh_reuse_grace);
            if rotations == 1 && now.saturating_sub(session.rotated_at_ms) <= grace {
                return Err(("superseded", AuthError::InvalidGrant));
            }
            end_session(core, uid, sid, "reuse")
                .await
                .map_err(|e| ("error", e))?;
            tracing::warn!(
                user_id = %uid,
                session_id = %sid,
                rotations,
                "refresh token reuse detected; session revoked"
            );
            return Err(("reused", AuthError::InvalidGrant));
        }
        Lineage::Unknown => return Err(("invalid", AuthError::InvalidGrant)),
    }
    // `Current` here means the compare-and-set above lost to a rotation
    // that has since been undone (the session was replaced): a lost race.
    Err(("superseded", AuthError::InvalidGrant))
}

fn grant(
    core: &Core,
    token: &ParsedRefresh,
    next: &[u8; 32],
    rotated: &portcullis_storage::SessionRecord,
    now: u64,
) -> Result<TokenGrant, Failure> {
    let (uid, sid) = (token.user_id, token.session_id);
    core.read.put_session(rotated, now);
    // The session's own authentication, for its whole life.
    let access = core
        .token_svc
        .issue_access(uid, sid, now, &rotated.amr, rotated.auth_time_ms)
        .map_err(|e| ("error", e))?;
    Ok(TokenGrant {
        access_token: access.token,
        expires_in: access.expires_in,
        refresh_token: refresh::encode(uid, sid, rotated.generation, next),
        refresh_expires_in: rotated.expires_at_ms.saturating_sub(now) / 1000,
        session_id: sid.to_b64(),
        device_token: None,
    })
}
