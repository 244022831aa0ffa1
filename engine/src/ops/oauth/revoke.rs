//! [`Revoke`]: RFC 7009. Revoking either token of a session ends the
//! session; anything else is ignored (200 either way). Runs in the token's
//! user's partition.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::current_session;
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::TokenHint;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::access::unverified;
use crate::steps::limits::account_limit;
use crate::steps::sessions::end_session;
use crate::tokens::VerifiedAccess;
use crate::tokens::refresh::{self as refresh_token, ParsedRefresh};

/// RFC 7009 revocation.
pub struct Revoke {
    /// The token to revoke.
    pub token: Zeroizing<String>,
    /// The caller's guess of its kind (RFC 7009 lets the server ignore it).
    pub hint: Option<TokenHint>,
}

impl Operation for Revoke {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let core = &engine.core;
        if let Some(t) = refresh_token::parse(&self.token) {
            core.dispatch(PartitionKey::User(t.user_id), reply, move |c| refresh(c, t));
            return;
        }
        match core.token_svc.verify_access(&self.token, core.now_ms()) {
            // RFC 7009: invalid tokens do not cause an error.
            Err(p) => reply.send(match unverified(core, p) {
                e @ AuthError::Unavailable { .. } => Err(e),
                _ => Ok(()),
            }),
            Ok(a) => core.dispatch(PartitionKey::User(a.user_id), reply, move |c| access(c, a)),
        }
    }
}

/// Revoking an access token ends its session.
async fn access(core: Arc<Core>, access: VerifiedAccess) -> Reply<()> {
    account_limit(
        &core,
        "introspection",
        access.user_id,
        core.cfg.introspection_rate_limit,
    )
    .await?;
    end_session(&core, access.user_id, access.session_id, "revoke").await?;
    Ok(())
}

/// Revoking a session's current refresh token ends the session; any other
/// token is ignored (RFC 7009 answers 200 either way).
async fn refresh(core: Arc<Core>, token: ParsedRefresh) -> Reply<()> {
    if let Some(s) = current_session(&core, &token).await? {
        end_session(&core, s.user_id, s.id, "revoke").await?;
    }
    Ok(())
}
