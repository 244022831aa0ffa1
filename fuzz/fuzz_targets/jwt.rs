//! Access-token verification: `TokenService::verify_access` (header, key
//! lookup, signature, claims, expiry, the cache of verified tokens) with a
//! key ring of one fixed Ed25519 key, and `jsonwebtoken::decode_header`.
//!
//! Input: a mode byte, then
//! - mode 0: the token text as presented in `Authorization: Bearer`;
//! - mode 1: a claims payload, signed under our key with our header, so
//!   the claim checks behind the signature are reached;
//! - mode 2: header and payload separated by the first `\n`, both signed.
//!
//! The key is fixed (`SEED`) so that the seed corpus' real token verifies
//! and its mutations explore the paths after the key lookup.
//!
//! Checked: nothing panics; an accepted token carries our issuer and
//! audience, is unexpired, names a parseable user and session and was
//! signed by our key with EdDSA; a second verification (from the cache)
//! agrees with the first.

#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use portcullis_engine::TokenProblem;
use portcullis_engine::tokens::jwt::thumbprint;
use portcullis_engine::tokens::{KeyRing, TokenConfig, TokenService};
use portcullis_storage::{SessionId, SigningKeyRecord, UserId};
use ring::signature::{Ed25519KeyPair, KeyPair};

const ISSUER: &str = "http://localhost:8080";
const AUDIENCE: &str = "portcullis";
/// The fixed key's seed (a test key: it signs nothing but fuzz inputs).
const SEED: [u8; 32] = *b"portcullis fuzz key, never used.";
/// When tokens are verified (the corpus token is valid from 1_800_000_000 s
/// for 900 s).
const NOW_MS: u64 = 1_800_000_100_000;

struct Fixture {
    svc: TokenService,
    pair: Ed25519KeyPair,
    kid: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    // PKCS#8 v1 (RFC 8410) of an Ed25519 seed.
    let mut pkcs8 = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    pkcs8.extend_from_slice(&SEED);
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).expect("fixed key");
    let mut public = [0u8; 32];
    public.copy_from_slice(pair.public_key().as_ref());
    let kid = thumbprint(&public);
    let svc = TokenService::new(TokenConfig {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        access_ttl: Duration::from_secs(900),
        verified_cache_capacity: 1000,
    })
    .expect("token service");
    svc.set_keys(KeyRing::load(
        vec![SigningKeyRecord {
            kid: kid.clone(),
            pkcs8,
            public,
            created_at_ms: 0,
            not_before_ms: 0,
            expires_at_ms: None,
        }],
        0,
    ));
    Fixture { svc, pair, kid }
});

fn signed(f: &Fixture, header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let sig = f.pair.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut token);
    token
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let [mode, rest @ ..] = data else {
        return;
    };
    let token = match mode % 3 {
        0 => String::from_utf8_lossy(rest).into_owned(),
        1 => {
            let header = format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{}"}}"#, f.kid);
            signed(f, header.as_bytes(), rest)
        }
        _ => {
            let (header, payload) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            signed(f, header, payload)
        }
    };

    let header = jsonwebtoken::decode_header(&token);
    if f.svc.names_unknown_key(&token) {
        let kid = header.as_ref().ok().and_then(|h| h.kid.clone());
        assert!(kid.is_some_and(|k| k != f.kid), "our kid called unknown");
    }

    let first = f.svc.verify_access(&token, NOW_MS);
    if let Ok(v) = &first {
        let h = header.as_ref().expect("verified without a readable header");
        assert_eq!(h.alg, jsonwebtoken::Algorithm::EdDSA);
        assert_eq!(h.kid.as_deref(), Some(f.kid.as_str()));
        let c = &v.claims;
        assert_eq!(c.iss, ISSUER);
        assert_eq!(c.aud, AUDIENCE);
        assert!(NOW_MS / 1000 < c.exp, "expired token accepted");
        assert!(
            c.iat <= NOW_MS / 1000 + 60,
            "token from the future accepted"
        );
        assert_eq!(UserId::parse(&c.sub), Some(v.user_id));
        assert_eq!(SessionId::from_b64(&c.sid), Some(v.session_id));
    }
    let second = f.svc.verify_access(&token, NOW_MS);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a.claims, b.claims, "the cache changed the claims"),
        (Err(a), Err(b)) => assert_eq!(a, b),
        _ => panic!("verification changed its answer: {first:?} then {second:?}"),
    }
    // Later than its expiry, a verified token is refused, cached or not.
    if let Ok(v) = &first
        && v.claims.exp <= u64::MAX / 1000
    {
        let late = v.claims.exp.saturating_mul(1000);
        assert_eq!(
            f.svc.verify_access(&token, late).err(),
            Some(TokenProblem::Expired)
        );
    }
});
