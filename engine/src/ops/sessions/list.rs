//! [`ListSessions`]: the bearer's live sessions. Runs in the user's
//! partition.

use std::sync::Arc;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::{Bearer, SessionView};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;
use crate::views::session_view;

/// The bearer's live sessions, oldest first.
pub struct ListSessions {
    /// Access token.
    pub bearer: Bearer,
}

impl Operation for ListSessions {
    type Reply = Vec<SessionView>;

    fn submit(self, engine: &Engine, reply: Responder<Vec<SessionView>>) {
        authed(&engine.core, self.bearer, reply, run);
    }
}

/// The token's user's live sessions.
async fn run(core: Arc<Core>, access: VerifiedAccess) -> Reply<Vec<SessionView>> {
    authorize(&core, &access).await?;
    let sessions = core
        .token_op(
            "list_sessions",
            core.tokens.list_sessions(access.user_id, core.now_ms()),
        )
        .await
        .map_err(|e| AuthError::from_store("list_sessions", e))?;
    Ok(sessions
        .iter()
        .map(|s| session_view(s, access.session_id))
        .collect())
}
