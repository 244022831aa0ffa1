//! [`ConfirmEmailVerification`]: mark the address verified with the mailed
//! token (used up by the same write). Runs in the user's partition.

use std::sync::Arc;

use portcullis_storage::StoreError;
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::UserView;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::with_onetime;
use crate::steps::record::save_user;
use crate::tokens::onetime::{self, Purpose};

/// Confirm an address with the mailed token.
pub struct ConfirmEmailVerification {
    /// The token from the link.
    pub token: Zeroizing<String>,
}

impl Operation for ConfirmEmailVerification {
    type Reply = Arc<UserView>;

    fn submit(self, engine: &Engine, reply: Responder<Arc<UserView>>) {
        with_onetime(
            &engine.core,
            Purpose::VerifyEmail,
            &self.token,
            AuthError::InvalidToken,
            reply,
            run,
        );
    }
}

/// Marks the address verified if `token` is the pending one; the token is
/// used up by the same write.
async fn run(core: Arc<Core>, token: onetime::Presented) -> Reply<Arc<UserView>> {
    // Another writer may move the record on meanwhile: reload and check the
    // token again, a few times.
    for _ in 0..3 {
        let now = core.now_ms();
        let current = core
            .user_op("get_user", core.users.get_user(token.user_id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            .ok_or(AuthError::InvalidToken)?;
        if !token.matches(current.account.verify_email.as_ref(), now) {
            return Err(AuthError::InvalidToken);
        }
        let mut updated = current.clone();
        updated.email_verified = true;
        updated.account.verify_email = None;
        match save_user(&core, &current, &mut updated, &[]).await {
            Ok(view) => return Ok(view),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
