//! Sign in with Apple's particulars: the client secret is a short-lived
//! ES256 JWT signed with the team's key (`.p8`, PKCS#8), and its native
//! SDK puts the SHA-256 of the app's nonce in the ID token.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// Apple's audience for client secrets.
pub const AUDIENCE: &str = "https://appleid.apple.com";
/// How long a client secret is valid (Apple allows up to six months; one
/// is made per token request).
const LIFETIME_SECS: u64 = 300;

/// The DER of a PEM `PRIVATE KEY`.
fn der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| "the Apple key is not a PEM private key".to_owned())
}

/// The client secret: `{alg: ES256, kid}` `{iss: team, sub: client id,
/// aud: https://appleid.apple.com, iat, exp}`.
pub fn client_secret(
    team_id: &str,
    key_id: &str,
    pem: &str,
    client_id: &str,
    now_ms: u64,
) -> Result<String, String> {
    let rng = SystemRandom::new();
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der(pem)?, &rng)
        .map_err(|_| "the Apple key is not a PKCS#8 P-256 key".to_owned())?;
    let now = now_ms / 1000;
    let header = serde_json::json!({"alg": "ES256", "kid": key_id});
    let claims = serde_json::json!({
        "iss": team_id, "sub": client_id, "aud": AUDIENCE,
        "iat": now, "exp": now + LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = key
        .sign(&rng, signing_input.as_bytes())
        .map_err(|_| "signing the Apple client secret failed".to_owned())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(sig.as_ref())
    ))
}

/// The SHA-256 (lowercase hex) of a nonce, as Apple's SDK sends it.
pub fn hashed_nonce(nonce: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, nonce.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    #[test]
    fn the_client_secret_is_an_es256_jwt_apple_can_verify() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(pkcs8.as_ref())
        );
        let jwt = client_secret(
            "TEAM123456",
            "KEY1234567",
            &pem,
            "com.example.web",
            1_700_000_000_000,
        )
        .unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "kid": "KEY1234567"})
        );
        assert_eq!(claims["iss"], "TEAM123456");
        assert_eq!(claims["sub"], "com.example.web");
        assert_eq!(claims["aud"], AUDIENCE);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            300
        );
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, key.public_key().as_ref())
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &URL_SAFE_NO_PAD.decode(parts[2]).unwrap(),
            )
            .unwrap();
        assert!(client_secret("T", "K", "not a key", "c", 0).is_err());
    }

    #[test]
    fn the_nonce_hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hashed_nonce("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
