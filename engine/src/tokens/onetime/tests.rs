use super::*;

const NOW: u64 = 1_800_000_000_000;

#[test]
fn an_issued_token_matches_once_parsed_until_it_expires() {
    let rng = SystemRandom::new();
    let user = UserId([7; 16]);
    let t = issue(Purpose::VerifyEmail, user, NOW, 1000, &rng).unwrap();
    assert!(t.token.starts_with("pcv_") && t.token.len() <= MAX_TOKEN_LEN);
    let p = parse(Purpose::VerifyEmail, &t.token).unwrap();
    assert_eq!(p.user_id, user);
    assert!(p.matches(Some(&t.pending), NOW));
    assert!(p.matches(Some(&t.pending), NOW + 999));
    assert!(!p.matches(Some(&t.pending), NOW + 1000), "expired");
    assert!(!p.matches(None, NOW), "used up (nothing pending)");
    // Another token of the same user does not match this one's entry.
    let other = issue(Purpose::VerifyEmail, user, NOW, 1000, &rng).unwrap();
    assert!(
        !parse(Purpose::VerifyEmail, &other.token)
            .unwrap()
            .matches(Some(&t.pending), NOW)
    );
}

#[test]
fn a_token_of_another_flow_is_refused() {
    let rng = SystemRandom::new();
    let t = issue(Purpose::PasswordReset, UserId([1; 16]), NOW, 1000, &rng).unwrap();
    assert!(parse(Purpose::VerifyEmail, &t.token).is_none());
    assert!(parse(Purpose::EmailChange, &t.token).is_none());
    // Even re-prefixed, its hash is keyed by purpose and does not match.
    let swapped = t.token.replacen("pcr_", "pcv_", 1);
    let p = parse(Purpose::VerifyEmail, &swapped).unwrap();
    let mut pending = t.pending.clone();
    pending.expires_at_ms = u64::MAX;
    assert!(!p.matches(Some(&pending), NOW));
}

#[test]
fn malformed_tokens_are_refused() {
    let rng = SystemRandom::new();
    let t = issue(Purpose::EmailChange, UserId([2; 16]), NOW, 1000, &rng).unwrap();
    let good = t.token.as_str();
    for bad in [
        "",
        "pce_",
        &good[..good.len() - 1],
        &format!("{good}A"),
        &good.replace('.', "-"),
        &format!("{}.{}", &good[..good.find('.').unwrap()], "!".repeat(43)),
        &"x".repeat(500),
    ] {
        assert!(parse(Purpose::EmailChange, bad).is_none(), "{bad:?}");
    }
}
