//! EdDSA JWTs: `jsonwebtoken` for the header type and for verification and
//! claim validation, `ring` for the Ed25519 arithmetic.
//!
//! `jsonwebtoken` 11 delegates cryptography to a process-wide
//! [`CryptoProvider`]; [`install_ring_provider`] installs one backed by `ring`
//! that knows only EdDSA, so no other algorithm (`none`, HS256 keyed with our
//! public key, ...) can ever verify.
//!
//! Signing does not go through `jsonwebtoken::encode`: that builds the signer
//! from the PKCS#8 bytes on every call, which for Ed25519 recomputes the public
//! key (a second scalar multiplication per token, measured in
//! `benches/benches/micro.rs`). [`SigningKey`] keeps the parsed `ring` key pair
//! and the encoded header, and produces the same compact JWS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

/// Claims of a Portcullis access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// Issuer (`PORTCULLIS_ISSUER`).
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// User id (hyphenated UUID).
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Token id.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Authentication methods (RFC 8176), e.g. `["pwd"]`: how the session
    /// was opened, the same for every token of the session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user authenticated (Unix seconds, OpenID Connect
    /// `auth_time`): the session's sign-in, not this token's issue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<u64>,
}

/// The ring-backed provider: EdDSA only.
static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: ring_signer,
    verifier_factory: ring_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Installs the ring-backed `jsonwebtoken` provider for this process.
/// Idempotent; returns false if a different provider was installed first.
pub fn install_ring_provider() -> bool {
    match RING_PROVIDER.install_default() {
        Ok(()) => true,
        Err(existing) => std::ptr::eq(existing, &RING_PROVIDER),
    }
}

struct RingSigner(Ed25519KeyPair);

impl signature::Signer<Vec<u8>> for RingSigner {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.0.sign(msg).as_ref().to_vec())
    }
}

impl JwtSigner for RingSigner {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

struct RingVerifier(Vec<u8>);

impl signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], sig: &Vec<u8>) -> Result<(), signature::Error> {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, sig)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
    }
}

fn ring_signer(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    if *alg != Algorithm::EdDSA {
        return Err(JwtError::from(ErrorKind::InvalidAlgorithm));
    }
    let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
        .map_err(|_| JwtError::from(ErrorKind::InvalidEddsaKey))?;
    Ok(Box::new(RingSigner(pair)))
}

fn ring_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *alg != Algorithm::EdDSA {
        return Err(JwtError::from(ErrorKind::InvalidAlgorithm));
    }
    let bytes = key.try_get_as_bytes()?;
    if bytes.len() != 32 {
        return Err(JwtError::from(ErrorKind::InvalidEddsaKey));
    }
    Ok(Box::new(RingVerifier(bytes.to_vec())))
}

/// A parsed signing key with its pre-encoded JWS header.
pub struct SigningKey {
    kid: String,
    pair: Ed25519KeyPair,
    header_b64: String,
    decoding: DecodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Parses a PKCS#8 Ed25519 key.
    pub fn from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<SigningKey, ring::error::KeyRejected> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.to_owned());
        // Serializing a plain struct of strings cannot fail.
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
        let decoding = DecodingKey::from_ed_der(pair.public_key().as_ref());
        Ok(SigningKey {
            kid: kid.to_owned(),
            header_b64: URL_SAFE_NO_PAD.encode(header_json),
            pair,
            decoding,
        })
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The `jsonwebtoken` verification key.
    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, serde_json::Error> {
        let payload = serde_json::to_vec(claims)?;
        let mut out = String::with_capacity(self.header_b64.len() + payload.len() * 4 / 3 + 100);
        out.push_str(&self.header_b64);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut out);
        let sig = self.pair.sign(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut out);
        Ok(out)
    }
}

/// RFC 7638 thumbprint of an Ed25519 public key, base64url: the key id.
pub fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(public)
    );
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

#[cfg(test)]
mod tests;
