//! [`ListPasskeys`], [`RenamePasskey`], [`DeletePasskey`]: the bearer's
//! passkeys. Deleting one is refused when it is the account's last way to
//! sign in. Runs in the user's partition.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_storage::{StoreError, UserRecord};

use super::{PasskeyView, parse_name};
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::Bearer;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::steps::access::authed;
use crate::steps::outbox::notice;
use crate::steps::passkeys::keeps_a_way_in;
use crate::steps::record::{load_user, save_user};
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;

/// The bearer's passkeys.
pub struct ListPasskeys {
    /// Access token.
    pub bearer: Bearer,
}

impl Operation for ListPasskeys {
    type Reply = Vec<PasskeyView>;

    fn submit(self, engine: &Engine, reply: Responder<Vec<PasskeyView>>) {
        authed(&engine.core, self.bearer, reply, list);
    }
}

async fn list(core: Arc<Core>, access: VerifiedAccess) -> Reply<Vec<PasskeyView>> {
    authorize(&core, &access).await?;
    let user = load_user(&core, access.user_id).await?;
    Ok(user
        .account
        .passkeys
        .iter()
        .map(PasskeyView::from)
        .collect())
}

/// Rename one of the bearer's passkeys.
pub struct RenamePasskey {
    /// Access token.
    pub bearer: Bearer,
    /// The passkey's id (base64url).
    pub id: String,
    /// Its new name.
    pub name: String,
}

impl Operation for RenamePasskey {
    type Reply = PasskeyView;

    fn submit(self, engine: &Engine, reply: Responder<PasskeyView>) {
        let RenamePasskey { bearer, id, name } = self;
        authed(&engine.core, bearer, reply, move |c, a| {
            rename(c, a, id, name)
        });
    }
}

/// The raw credential id of `text`; `None` (404) when it cannot be one.
fn raw_id(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() > 1400 {
        return None;
    }
    URL_SAFE_NO_PAD.decode(text).ok()
}

fn position(user: &UserRecord, id: &[u8]) -> Result<usize, AuthError> {
    user.account
        .passkeys
        .iter()
        .position(|p| p.id == id)
        .ok_or(AuthError::NotFound)
}

async fn rename(
    core: Arc<Core>,
    access: VerifiedAccess,
    id: String,
    name: String,
) -> Reply<PasskeyView> {
    authorize(&core, &access).await?;
    let name = parse_name(&name)?;
    let id = raw_id(&id).ok_or(AuthError::NotFound)?;
    for _ in 0..3 {
        let current = load_user(&core, access.user_id).await?;
        let at = position(&current, &id)?;
        let mut updated = current.clone();
        updated.account.passkeys[at].name = name.clone();
        match save_user(&core, &current, &mut updated, &[]).await {
            Ok(_) => return Ok(PasskeyView::from(&updated.account.passkeys[at])),
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

/// Delete one of the bearer's passkeys.
pub struct DeletePasskey {
    /// Access token.
    pub bearer: Bearer,
    /// The passkey's id (base64url).
    pub id: String,
}

impl Operation for DeletePasskey {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let DeletePasskey { bearer, id } = self;
        authed(&engine.core, bearer, reply, move |c, a| delete(c, a, id));
    }
}

async fn delete(core: Arc<Core>, access: VerifiedAccess, id: String) -> Reply<()> {
    authorize(&core, &access).await?;
    let id = raw_id(&id).ok_or(AuthError::NotFound)?;
    for _ in 0..3 {
        let current = load_user(&core, access.user_id).await?;
        let at = position(&current, &id)?;
        if !keeps_a_way_in(&current, Some(&id), None) {
            return Err(AuthError::LastSignInMethod);
        }
        let mut updated = current.clone();
        let gone = updated.account.passkeys.remove(at);
        let letter = crate::mail::letters::passkey_deleted(&current.email, &gone.name);
        let mail = notice(&core, "notice_passkey_deleted", &mut updated, &letter).await?;
        match save_user(&core, &current, &mut updated, &mail).await {
            Ok(_) => {
                tracing::info!(user_id = %current.id, passkey = %crate::passkeys::id_text(&gone.id), "passkey deleted");
                return Ok(());
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
