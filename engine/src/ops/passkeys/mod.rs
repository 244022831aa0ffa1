//! The bearer's passkeys: register one (a `start` that answers the
//! browser's creation options, a `finish` that checks the attestation),
//! list, rename and delete them. Signing in with one is under
//! [`crate::ops::auth`].
//!
//! | operation | partition |
//! | --- | --- |
//! | `RegisterStart`, `RegisterFinish`, `ListPasskeys`, `RenamePasskey`, `DeletePasskey` | user |

mod manage;
mod register;

pub use manage::{DeletePasskey, ListPasskeys, RenamePasskey};
pub use register::{RegisterFinish, RegisterStart};

use portcullis_storage::StoredPasskey;

use crate::domain::FieldError;
use crate::error::AuthError;

/// One passkey as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyView {
    /// The credential id (base64url).
    pub id: String,
    /// The owner's name for it.
    pub name: String,
    /// When it was registered (RFC 3339).
    pub created_at: String,
    /// When it last signed in (RFC 3339), if ever.
    pub last_used_at: Option<String>,
    /// Whether the authenticator says it is backed up (synced).
    pub backed_up: bool,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> PasskeyView {
        PasskeyView {
            id: crate::passkeys::id_text(&p.id),
            name: p.name.clone(),
            created_at: crate::views::rfc3339(p.created_at_ms),
            last_used_at: p.last_used_at_ms.map(crate::views::rfc3339),
            backed_up: p.backed_up,
        }
    }
}

/// A passkey's name: trimmed, 1 to 64 characters, no control characters.
pub(crate) fn parse_name(raw: &str) -> Result<String, AuthError> {
    let s = raw.trim();
    let problem = if s.is_empty() {
        Some("must not be empty")
    } else if s.chars().count() > crate::passkeys::MAX_NAME_CHARS {
        Some("must be at most 64 characters")
    } else if s.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match problem {
        Some(p) => Err(AuthError::InvalidRequest(vec![FieldError::new("name", p)])),
        None => Ok(s.to_owned()),
    }
}
