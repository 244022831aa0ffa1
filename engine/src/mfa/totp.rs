//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second
//! steps, one step of clock skew either way. What authenticator apps expect.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Steps accepted before and after the current one (clock skew).
pub const SKEW_STEPS: u64 = 1;
/// Secret length: 160 bits, the HMAC-SHA1 output size (RFC 4226 §4).
pub const SECRET_LEN: usize = 20;

/// A fresh random secret.
pub fn generate_secret(
    rng: &SystemRandom,
) -> Result<Zeroizing<[u8; SECRET_LEN]>, ring::error::Unspecified> {
    let mut s = Zeroizing::new([0u8; SECRET_LEN]);
    rng.fill(s.as_mut())?;
    Ok(s)
}

/// The time step of `unix_ms`.
pub fn step_at(unix_ms: u64) -> u64 {
    unix_ms / 1000 / STEP_SECS
}

/// The HOTP value of `secret` at counter `step`, with `digits` digits
/// (RFC 4226 §5.3 dynamic truncation).
pub fn code_at(secret: &[u8], step: u64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    binary % 10u32.pow(digits)
}

/// Whether `code` is a well-formed code: exactly [`DIGITS`] ASCII digits.
pub fn is_code(code: &str) -> bool {
    code.len() == DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit())
}

/// Checks `code` against the steps around `now_ms` and returns the step it
/// matched. Steps at or before `last_used` are refused, so a code cannot be
/// replayed, nor an older one used after a newer. Every candidate step is
/// compared, in constant time, whatever matches.
pub fn verify(secret: &[u8], code: &str, now_ms: u64, last_used: Option<u64>) -> Option<u64> {
    if !is_code(code) {
        return None;
    }
    let now = step_at(now_ms);
    let mut matched: Option<u64> = None;
    for step in now.saturating_sub(SKEW_STEPS)..=now + SKEW_STEPS {
        let expected = format!(
            "{:0width$}",
            code_at(secret, step, DIGITS),
            width = DIGITS as usize
        );
        let same: bool = expected.as_bytes().ct_eq(code.as_bytes()).into();
        let fresh = last_used.is_none_or(|last| step > last);
        if same && fresh && matched.is_none() {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app scans (Key Uri Format):
/// label `issuer:account`, with the secret, issuer and parameters.
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent(issuer),
        percent(account),
        base32(secret),
        percent(issuer)
    )
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
