//! [`UpdateMe`]: change the bearer's profile. Runs in the user's
//! partition.

use std::sync::Arc;

use portcullis_storage::StoreError;

use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::{Bearer, UserView};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::record::{load_user, save_user};
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;

/// Change the bearer's profile.
pub struct UpdateMe {
    /// Access token.
    pub bearer: Bearer,
    /// Changes.
    pub patch: ProfilePatch,
}

/// A field of a partial update.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Leave as is (the field was absent).
    #[default]
    Keep,
    /// Remove the value (the field was `null`).
    Clear,
    /// Set a new value.
    Set(T),
}

/// Profile fields a user may change.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProfilePatch {
    /// Display name.
    pub name: Patch<String>,
    /// Picture URL.
    pub picture_url: Patch<String>,
}

impl Operation for UpdateMe {
    type Reply = Arc<UserView>;

    fn submit(self, engine: &Engine, reply: Responder<Arc<UserView>>) {
        let patch = self.patch;
        authed(&engine.core, self.bearer, reply, move |c, a| {
            run(c, a, patch)
        });
    }
}

/// Applies a profile patch.
async fn run(core: Arc<Core>, access: VerifiedAccess, patch: ProfilePatch) -> Reply<Arc<UserView>> {
    authorize(&core, &access).await?;
    // The partition serializes this user's updates in this process; the
    // version check catches a concurrent writer elsewhere, so retry once.
    for _ in 0..2 {
        let current = load_user(&core, access.user_id).await?;
        let mut updated = current.clone();
        apply(&mut updated.name, &patch.name);
        apply(&mut updated.picture_url, &patch.picture_url);
        if updated == current {
            return Ok(core.read.put_user(&current));
        }
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

fn apply(field: &mut Option<String>, patch: &Patch<String>) {
    match patch {
        Patch::Keep => {}
        Patch::Clear => *field = None,
        Patch::Set(v) => *field = Some(v.clone()),
    }
}
