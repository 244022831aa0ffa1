//! Device tokens (OWASP "Slow Down Online Guessing Attacks with Device
//! Cookies"): a successful password login hands the client an opaque token
//! bound to the account; a later login that presents it is counted against
//! that device alone, so failures from anywhere else never lock the owner
//! out.
//!
//! `pdt_<base64url(user id ‖ device id ‖ expiry ‖ epoch ‖ tag)>`: 16 + 16 +
//! 8 + 8 bytes and a 32-byte HMAC-SHA256 tag under a key derived from the
//! data key (configuration shared by every pod, never kept in a store, so
//! a leaked database or token store cannot mint device tokens; with
//! several data keys the first signs and all verify). Nothing is stored per
//! device: the tag proves the token is ours, the user id binds it to one
//! account, the expiry ends it, and the account's device epoch (moved by a
//! password reset or change) retires every device token issued before.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_storage::UserId;
use ring::hmac;
use zeroize::Zeroizing;

/// Prefix of device tokens (helps secret scanners).
pub const PREFIX: &str = "pdt_";
const BODY: usize = 16 + 16 + 8 + 8;
const TAG: usize = 32;
/// Length of a well-formed token.
pub const TOKEN_LEN: usize = PREFIX.len() + (BODY + TAG).div_ceil(3) * 4 - 1;
const LABEL: &[u8] = b"portcullis/device-token/v1";

/// The keys device tokens are signed with (the first) and verified with
/// (any).
pub struct DeviceKey(Vec<hmac::Key>);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<secret>)")
    }
}

/// A device token that verified: which account and device, until when, and
/// under which credentials epoch it was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    /// The account it was issued to.
    pub user_id: UserId,
    /// The device (random, per token lineage).
    pub device_id: [u8; 16],
    /// When it stops being accepted (Unix ms, whole seconds).
    pub expires_at_ms: u64,
    /// The account's device epoch when it was issued.
    pub epoch: u64,
}

impl DeviceKey {
    /// The device-token keys derived from the data keys.
    pub fn from_data_keys(keys: &crate::datakey::DataKeys) -> DeviceKey {
        DeviceKey(
            keys.derive(LABEL)
                .iter()
                .map(|k| hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()))
                .collect(),
        )
    }

    /// A device-token key from one secret (tests).
    pub fn from_secret(secret: &[u8; 32]) -> DeviceKey {
        DeviceKey(vec![hmac::Key::new(hmac::HMAC_SHA256, secret)])
    }

    /// The token text for `device`.
    pub fn issue(&self, device: &Device) -> Zeroizing<String> {
        let mut raw = Zeroizing::new(Vec::with_capacity(BODY + TAG));
        raw.extend_from_slice(&device.user_id.0);
        raw.extend_from_slice(&device.device_id);
        raw.extend_from_slice(&(device.expires_at_ms / 1000).to_be_bytes());
        raw.extend_from_slice(&device.epoch.to_be_bytes());
        let Some(key) = self.0.first() else {
            return Zeroizing::new(String::new());
        };
        let tag = hmac::sign(key, &raw);
        raw.extend_from_slice(tag.as_ref());
        let mut out = Zeroizing::new(String::with_capacity(TOKEN_LEN));
        out.push_str(PREFIX);
        URL_SAFE_NO_PAD.encode_string(&*raw, &mut out);
        out
    }

    /// The device of a presented token, if it is one of ours (the tag is
    /// checked in constant time). Expiry, account and epoch are the caller's.
    pub fn verify(&self, token: &str) -> Option<Device> {
        if token.len() != TOKEN_LEN {
            return None;
        }
        let raw = Zeroizing::new(URL_SAFE_NO_PAD.decode(token.strip_prefix(PREFIX)?).ok()?);
        if raw.len() != BODY + TAG {
            return None;
        }
        let (body, tag) = raw.split_at(BODY);
        if !self.0.iter().any(|k| hmac::verify(k, body, tag).is_ok()) {
            return None;
        }
        let mut user = [0u8; 16];
        user.copy_from_slice(&body[..16]);
        let mut device_id = [0u8; 16];
        device_id.copy_from_slice(&body[16..32]);
        let mut n = [0u8; 8];
        n.copy_from_slice(&body[32..40]);
        let expires_at_ms = u64::from_be_bytes(n).saturating_mul(1000);
        n.copy_from_slice(&body[40..48]);
        Some(Device {
            user_id: UserId(user),
            device_id,
            expires_at_ms,
            epoch: u64::from_be_bytes(n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device() -> Device {
        Device {
            user_id: UserId([3; 16]),
            device_id: [4; 16],
            expires_at_ms: 1_900_000_000_000,
            epoch: 7,
        }
    }

    #[test]
    fn a_token_verifies_to_its_device() {
        let k = DeviceKey::from_secret(&[1; 32]);
        let t = k.issue(&device());
        assert!(t.starts_with(PREFIX));
        assert_eq!(t.len(), TOKEN_LEN);
        assert_eq!(k.verify(&t), Some(device()));
    }

    #[test]
    fn forged_altered_or_foreign_tokens_do_not_verify() {
        let k = DeviceKey::from_secret(&[1; 32]);
        let t = k.issue(&device());
        // Another server's key.
        assert_eq!(DeviceKey::from_secret(&[2; 32]).verify(&t), None);
        // Any changed character.
        for i in PREFIX.len()..t.len() {
            let mut b = t.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let s = String::from_utf8(b).unwrap();
            assert_eq!(k.verify(&s), None, "position {i}");
        }
        for bad in ["", "pdt_", "pdt_!!!", &t[..t.len() - 1], "prt_abc"] {
            assert_eq!(k.verify(bad), None, "{bad}");
        }
    }
}
