//! [`DeleteSession`]: end one of the bearer's sessions. Runs in the user's
//! partition.

use std::sync::Arc;

use portcullis_storage::SessionId;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::Bearer;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::sessions::{authorize, end_session};
use crate::tokens::VerifiedAccess;

/// End one of the bearer's sessions.
pub struct DeleteSession {
    /// Access token.
    pub bearer: Bearer,
    /// The session id from the path.
    pub session_id: String,
}

impl Operation for DeleteSession {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let target = SessionId::from_b64(&self.session_id);
        authed(&engine.core, self.bearer, reply, move |c, a| {
            run(c, a, target)
        });
    }
}

/// Ends one of the token's user's sessions.
async fn run(core: Arc<Core>, access: VerifiedAccess, target: Option<SessionId>) -> Reply<()> {
    authorize(&core, &access).await?;
    let Some(target) = target else {
        return Err(AuthError::NotFound);
    };
    if !end_session(&core, access.user_id, target, "deleted").await? {
        return Err(AuthError::NotFound);
    }
    Ok(())
}
