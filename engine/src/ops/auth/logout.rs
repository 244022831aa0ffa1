//! [`Logout`]: end the bearer's session. Runs in the user's partition.

use std::sync::Arc;

use crate::core::{Core, Engine};
use crate::model::Bearer;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::sessions::{authorize, end_session};
use crate::tokens::VerifiedAccess;

/// End the session of the bearer token.
pub struct Logout {
    /// Access token.
    pub bearer: Bearer,
}

impl Operation for Logout {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        authed(&engine.core, self.bearer, reply, run);
    }
}

/// Ends the token's session.
async fn run(core: Arc<Core>, access: VerifiedAccess) -> Reply<()> {
    authorize(&core, &access).await?;
    end_session(&core, access.user_id, access.session_id, "logout").await?;
    Ok(())
}
