//! `/v1/passkeys`: the bearer's passkeys (register, list, rename, delete).
//! Signing in with one is under [`crate::api::auth::passkey`].

pub mod manage;
pub mod register;

use portcullis_engine::ops::passkeys::PasskeyView;
use serde::Serialize;
use utoipa::ToSchema;

/// One passkey.
#[derive(Serialize, ToSchema)]
pub struct Passkey {
    /// The credential id (base64url): the `{id}` of its routes.
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When it last signed in (RFC 3339), or null.
    pub last_used_at: Option<String>,
    /// Whether the authenticator says it is backed up (synced to other
    /// devices).
    pub backed_up: bool,
}

impl From<PasskeyView> for Passkey {
    fn from(v: PasskeyView) -> Passkey {
        Passkey {
            id: v.id,
            name: v.name,
            created_at: v.created_at,
            last_used_at: v.last_used_at,
            backed_up: v.backed_up,
        }
    }
}

/// A newly registered passkey.
#[derive(Serialize, ToSchema)]
pub struct RegisteredPasskey {
    /// The credential id (base64url).
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
}
