use super::*;

/// RFC 6238 Appendix B: the SHA-1 seed, ASCII "12345678901234567890".
const RFC_SECRET: &[u8] = b"12345678901234567890";

#[test]
fn rfc_6238_sha1_test_vectors() {
    // (Unix seconds, 8-digit TOTP) from RFC 6238 Appendix B, mode SHA1.
    for (secs, totp) in [
        (59u64, 94_287_082u32),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ] {
        assert_eq!(code_at(RFC_SECRET, secs / STEP_SECS, 8), totp, "T = {secs}");
        // Six digits are the last six of the same value.
        assert_eq!(
            code_at(RFC_SECRET, secs / STEP_SECS, DIGITS),
            totp % 1_000_000
        );
    }
}

#[test]
fn rfc_4226_hotp_test_vectors() {
    // RFC 4226 Appendix D: counters 0..9 with the same secret.
    let expected = [
        755_224, 287_082, 359_152, 969_429, 338_314, 254_676, 287_922, 162_583, 399_871, 520_489,
    ];
    for (counter, code) in expected.into_iter().enumerate() {
        assert_eq!(
            code_at(RFC_SECRET, counter as u64, 6),
            code,
            "counter {counter}"
        );
    }
}

#[test]
fn a_code_is_accepted_one_step_either_side_and_not_beyond() {
    let now_ms = 1_111_111_111_000;
    let step = step_at(now_ms);
    let code = |s: u64| format!("{:06}", code_at(RFC_SECRET, s, DIGITS));
    assert_eq!(verify(RFC_SECRET, &code(step), now_ms, None), Some(step));
    assert_eq!(
        verify(RFC_SECRET, &code(step - 1), now_ms, None),
        Some(step - 1)
    );
    assert_eq!(
        verify(RFC_SECRET, &code(step + 1), now_ms, None),
        Some(step + 1)
    );
    for far in [step - 2, step + 2] {
        // (A code of a far step could collide with a near one by chance; not these.)
        assert_eq!(verify(RFC_SECRET, &code(far), now_ms, None), None);
    }
}

#[test]
fn a_used_step_and_older_ones_are_refused() {
    let now_ms = 1_234_567_890_000;
    let step = step_at(now_ms);
    let code = format!("{:06}", code_at(RFC_SECRET, step, DIGITS));
    assert_eq!(
        verify(RFC_SECRET, &code, now_ms, Some(step)),
        None,
        "replay"
    );
    assert_eq!(
        verify(RFC_SECRET, &code, now_ms, Some(step + 1)),
        None,
        "older than the last used"
    );
    assert_eq!(
        verify(RFC_SECRET, &code, now_ms, Some(step - 1)),
        Some(step)
    );
}

#[test]
fn malformed_codes_are_refused() {
    let now_ms = 59_000;
    for bad in ["", "28708", "2870820", "28708a", " 287082", "２８７０８２"] {
        assert_eq!(verify(RFC_SECRET, bad, now_ms, None), None, "{bad:?}");
    }
    assert_eq!(verify(RFC_SECRET, "287082", now_ms, None), Some(1));
}

#[test]
fn base32_follows_rfc_4648() {
    for (input, output) in [
        ("", ""),
        ("f", "MY"),
        ("fo", "MZXQ"),
        ("foo", "MZXW6"),
        ("foob", "MZXW6YQ"),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI"),
    ] {
        assert_eq!(base32(input.as_bytes()), output);
    }
    assert_eq!(base32(RFC_SECRET), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}

#[test]
fn the_otpauth_uri_names_issuer_account_and_parameters() {
    let uri = otpauth_uri("Portcullis Demo", "ada@example.com", RFC_SECRET);
    assert_eq!(
        uri,
        "otpauth://totp/Portcullis%20Demo:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
         &issuer=Portcullis%20Demo&algorithm=SHA1&digits=6&period=30"
    );
    let s = generate_secret(&SystemRandom::new()).unwrap();
    assert_eq!(base32(s.as_ref()).len(), 32);
}
