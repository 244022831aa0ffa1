//! Data generation: keys unique per (space, index) that look random, and
//! user-record-like values about half incompressible.

use crate::VAL_LEN;
use std::fmt::Write as _;

pub(crate) fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
/// 16-byte random-looking key, unique per (space, i).
pub(crate) fn key_of(space: u64, i: u64) -> [u8; 16] {
    let a = splitmix((space << 56) ^ i);
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&a.to_be_bytes());
    k[8..].copy_from_slice(&splitmix(a ^ 0x5555_AAAA_5555_AAAA).to_be_bytes());
    k
}
/// ~300-byte JSON-ish user record: field names + argon2-like hash + random padding (about half incompressible).
pub(crate) fn make_value(key: &[u8; 16], i: u64, ver: u64) -> Vec<u8> {
    const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut r = splitmix(i ^ ver.rotate_left(32) ^ 0xABCD_EF01);
    let mut rnd = |n: usize| -> String {
        (0..n)
            .map(|_| {
                r = splitmix(r);
                B64[(r & 63) as usize] as char
            })
            .collect()
    };
    let (salt, hash) = (rnd(22), rnd(43));
    let mut s = String::with_capacity(VAL_LEN + 8);
    s.push_str("{\"id\":\"");
    key.iter().for_each(|b| {
        let _ = write!(s, "{b:02x}");
    });
    let _ = write!(
        s,
        "\",\"email\":\"user{i}@example.com\",\"pw\":\"$argon2id$v=19$m=19456,t=2,p=1${salt}${hash}\",\
        \"created\":{},\"ver\":{ver},\"roles\":[\"user\"],\"mfa\":false,\"dev\":\"",
        1_700_000_000 + i
    );
    let pad = rnd((VAL_LEN - 2).saturating_sub(s.len()));
    s.push_str(&pad);
    s.push_str("\"}");
    let mut v = s.into_bytes();
    v.truncate(VAL_LEN);
    v
}
