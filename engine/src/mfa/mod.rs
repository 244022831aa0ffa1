//! Multi-factor authentication: TOTP codes (authenticator apps).

pub mod totp;

use portcullis_storage::UserId;

/// Associated data of the sealed recovery hashes (besides the user id), so
/// the blob cannot stand in for the sealed TOTP secret or the reverse.
const RECOVERY_AAD: &[u8] = b"/recovery-codes";

/// What the sealed recovery codes of `user` are bound to.
pub(crate) fn recovery_aad(user: UserId) -> Vec<u8> {
    let mut aad = user.0.to_vec();
    aad.extend_from_slice(RECOVERY_AAD);
    aad
}
