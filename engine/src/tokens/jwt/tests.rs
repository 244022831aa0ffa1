use super::*;
use ring::rand::SystemRandom;

fn key() -> SigningKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    SigningKey::from_pkcs8(&thumbprint(&public), pkcs8.as_ref()).unwrap()
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://localhost:8080".into(),
        aud: "portcullis".into(),
        sub: "01934f2a-7b3c-7d11-8022-334455667788".into(),
        sid: "c2lkc2lkc2lkc2lkc2lkcw".into(),
        jti: "jti".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_900,
        amr: vec!["pwd".into()],
        auth_time: Some(1_699_999_000),
    }
}

fn validation() -> jsonwebtoken::Validation {
    let mut v = jsonwebtoken::Validation::new(Algorithm::EdDSA);
    v.validate_exp = false;
    v.set_issuer(&["http://localhost:8080"]);
    v.set_audience(&["portcullis"]);
    v
}

#[test]
fn our_tokens_verify_with_jsonwebtoken_and_carry_the_kid() {
    assert!(install_ring_provider());
    let k = key();
    let token = k.sign(&claims()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(k.kid()));
    let data =
        jsonwebtoken::decode::<AccessClaims>(&token, k.decoding_key(), &validation()).unwrap();
    assert_eq!(data.claims, claims());
}

#[test]
fn jsonwebtoken_encode_with_our_provider_produces_verifiable_tokens() {
    assert!(install_ring_provider());
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let k = SigningKey::from_pkcs8("k", pkcs8.as_ref()).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k".into());
    let token = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_ed_der(pkcs8.as_ref()),
    )
    .unwrap();
    assert_eq!(
        token,
        k.sign(&claims()).unwrap(),
        "Ed25519 is deterministic: same JWS"
    );
}

#[test]
fn tampering_other_keys_and_other_algorithms_fail() {
    assert!(install_ring_provider());
    let k = key();
    let other = key();
    let token = k.sign(&claims()).unwrap();
    assert!(
        jsonwebtoken::decode::<AccessClaims>(&token, other.decoding_key(), &validation()).is_err()
    );
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut forged = claims();
    forged.sub = "someone-else".into();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    parts[1] = &payload;
    let tampered = parts.join(".");
    assert!(
        jsonwebtoken::decode::<AccessClaims>(&tampered, k.decoding_key(), &validation()).is_err()
    );
    // HS256 "signed" with the public key is refused by algorithm.
    let hs = jsonwebtoken::decode::<AccessClaims>(
        &token.replacen(
            &token[..token.find('.').unwrap()],
            &URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
            1,
        ),
        &DecodingKey::from_secret(k.public_key()),
        &validation(),
    );
    assert!(hs.is_err());
}

#[test]
fn thumbprint_matches_rfc8037_example() {
    // RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
    let x = URL_SAFE_NO_PAD
        .decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
        .unwrap();
    assert_eq!(
        thumbprint(&x),
        "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    );
}
