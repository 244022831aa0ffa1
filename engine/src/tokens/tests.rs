use super::*;

const T0: u64 = 1_800_000_000_000;

/// A fresh key set: the current signer and its published successor.
fn records() -> Vec<portcullis_storage::SigningKeyRecord> {
    let rng = SystemRandom::new();
    let policy = RotationPolicy {
        interval: Duration::from_secs(30 * 86_400),
        publish_lead: Duration::from_secs(3600),
        retire_after: Duration::from_secs(1800),
    };
    let changes = keys::plan(&[], T0, &policy, &rng).unwrap();
    changes
        .into_iter()
        .filter_map(|c| match c {
            keys::KeyChange::Save(k) => Some(k),
            keys::KeyChange::Delete(_) => None,
        })
        .collect()
}

fn service() -> TokenService {
    let svc = TokenService::new(TokenConfig {
        issuer: "http://localhost:8080".into(),
        audience: "portcullis".into(),
        access_ttl: Duration::from_secs(900),
        verified_cache_capacity: 1000,
    })
    .unwrap();
    svc.set_keys(KeyRing::load(records(), T0));
    svc
}

#[test]
fn issued_tokens_verify_until_they_expire() {
    let svc = service();
    let t = svc
        .issue_access(
            UserId([1; 16]),
            SessionId([2; 16]),
            T0,
            &["pwd".to_owned()],
            T0 - 60_000,
        )
        .unwrap();
    assert_eq!(t.expires_in, 900);
    let v = svc.verify_access(&t.token, T0 + 1_000).unwrap();
    assert_eq!(v.user_id, UserId([1; 16]));
    assert_eq!(v.session_id, SessionId([2; 16]));
    assert_eq!(v.claims.amr, vec!["pwd".to_owned()]);
    assert_eq!(v.claims.auth_time, Some((T0 - 60_000) / 1000));
    // Cached: a second verification agrees.
    assert_eq!(
        svc.verify_access(&t.token, T0 + 2_000).unwrap().claims,
        v.claims
    );
    assert_eq!(
        svc.verify_access(&t.token, T0 + 900_000).unwrap_err(),
        TokenProblem::Expired
    );
    // And it stays expired after leaving the cache.
    assert_eq!(
        svc.verify_access(&t.token, T0 + 900_000).unwrap_err(),
        TokenProblem::Expired
    );
}

#[test]
fn foreign_and_malformed_tokens_are_invalid() {
    let svc = service();
    let other = service();
    let t = other
        .issue_access(UserId([1; 16]), SessionId([2; 16]), T0, &[], T0)
        .unwrap();
    assert_eq!(
        svc.verify_access(&t.token, T0).unwrap_err(),
        TokenProblem::Invalid,
        "unknown kid"
    );
    for bad in ["", "a.b.c", "not a token", &"x".repeat(5000)] {
        assert_eq!(
            svc.verify_access(bad, T0).unwrap_err(),
            TokenProblem::Invalid
        );
    }
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        t.token.split('.').nth(1).unwrap()
    );
    assert_eq!(
        svc.verify_access(&none, T0).unwrap_err(),
        TokenProblem::Invalid
    );
}

#[test]
fn removing_a_key_forgets_the_tokens_it_verified() {
    let svc = TokenService::new(TokenConfig {
        issuer: "http://localhost:8080".into(),
        audience: "portcullis".into(),
        access_ttl: Duration::from_secs(900),
        verified_cache_capacity: 1000,
    })
    .unwrap();
    let (a, b) = (records(), records());
    svc.set_keys(KeyRing::load(a.clone(), T0));
    let t = svc
        .issue_access(UserId([1; 16]), SessionId([2; 16]), T0, &[], T0)
        .unwrap();
    svc.verify_access(&t.token, T0).unwrap();
    // Adding keys removes none: the token still verifies.
    svc.set_keys(KeyRing::load([a.clone(), b.clone()].concat(), T0));
    svc.verify_access(&t.token, T0 + 1_000).unwrap();
    // Its key gone, it is refused, although it was verified and cached.
    svc.set_keys(KeyRing::load(b, T0));
    assert_eq!(
        svc.verify_access(&t.token, T0 + 2_000).unwrap_err(),
        TokenProblem::Invalid
    );
    // And a ring that has it again verifies it again.
    svc.set_keys(KeyRing::load(a, T0));
    svc.verify_access(&t.token, T0 + 3_000).unwrap();
}
