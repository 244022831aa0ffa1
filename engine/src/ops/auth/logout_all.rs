//! [`LogoutAll`]: end every session of the bearer's user. Runs in the
//! user's partition.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::Bearer;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::record::{load_user, save_user};
use crate::steps::sessions::{authorize, revoke_all_sessions};
use crate::tokens::VerifiedAccess;

/// End every session of the bearer's user.
pub struct LogoutAll {
    /// Access token.
    pub bearer: Bearer,
}

impl Operation for LogoutAll {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        authed(&engine.core, self.bearer, reply, run);
    }
}

/// Ends every session of the token's user. The credentials epoch moves on
/// first, so a sign-in that checked the password before and opens its
/// session after is refused (and device tokens issued before stop counting).
async fn run(core: Arc<Core>, access: VerifiedAccess) -> Reply<()> {
    authorize(&core, &access).await?;
    core.read.revoke_session(access.user_id, access.session_id);
    let mut bumped = false;
    for _ in 0..3 {
        let current = load_user(&core, access.user_id).await?;
        let mut updated = current.clone();
        updated.account.credentials_epoch = updated.account.credentials_epoch.wrapping_add(1);
        // A second step begun before opens no session after.
        updated.account.mfa_login = None;
        match save_user(&core, &current, &mut updated, &[]).await {
            Ok(_) => {
                bumped = true;
                break;
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    if !bumped {
        return Err(AuthError::Unavailable {
            retry_after_secs: 1,
        });
    }
    revoke_all_sessions(&core, access.user_id, None, "logout_all").await?;
    Ok(())
}
