//! The token service: access JWTs (sign, verify with a cache of verified
//! tokens), refresh-token minting and parsing, and the JWKS.

pub mod device;
pub mod jwt;
pub mod keys;
pub mod onetime;
pub mod refresh;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use portcullis_storage::{SessionId, TokenHash, UserId};
use quick_cache::sync::Cache;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

pub use jwt::AccessClaims;
pub use keys::{KeyRing, RotationPolicy};

use crate::error::{AuthError, TokenProblem};
use crate::metrics as m;

/// Token settings.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// JWT `iss`.
    pub issuer: String,
    /// JWT `aud`.
    pub audience: String,
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Verified access tokens kept in memory.
    pub verified_cache_capacity: usize,
}

/// A freshly signed access token.
#[derive(Debug, Clone)]
pub struct AccessToken {
    /// The compact JWS.
    pub token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// A verified access token.
#[derive(Debug, Clone)]
pub struct VerifiedAccess {
    /// `sub`, parsed.
    pub user_id: UserId,
    /// `sid`, parsed.
    pub session_id: SessionId,
    /// All claims.
    pub claims: Arc<AccessClaims>,
}

/// The installed key ring, and how many times a key was removed from it.
struct Installed {
    ring: Arc<KeyRing>,
    /// Bumped whenever a ring replaces one with a key it lacks; a token
    /// verified under an older count is not cached (see `verify_access`).
    removals: u64,
}

/// Signs and verifies tokens.
pub struct TokenService {
    cfg: TokenConfig,
    ring: RwLock<Installed>,
    chain: std::sync::OnceLock<refresh::Chain>,
    device: std::sync::OnceLock<device::DeviceKey>,
    verified: Cache<String, VerifiedAccess>,
    validation: Validation,
    rng: SystemRandom,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Longest access token accepted for verification (ours are ~400 bytes).
const MAX_ACCESS_TOKEN_LEN: usize = 4096;

impl TokenService {
    /// A token service with no keys yet (see [`TokenService::set_keys`]).
    pub fn new(cfg: TokenConfig) -> Result<TokenService, AuthError> {
        if !jwt::install_ring_provider() {
            return Err(AuthError::Internal(
                "another jsonwebtoken crypto provider is installed in this process".into(),
            ));
        }
        let mut validation = Validation::new(Algorithm::EdDSA);
        // Expiry is checked against the injected clock, not the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[&cfg.issuer]);
        validation.set_audience(&[&cfg.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Ok(TokenService {
            verified: Cache::new(cfg.verified_cache_capacity.max(16)),
            cfg,
            ring: RwLock::new(Installed {
                ring: Arc::new(KeyRing::load(Vec::new(), 0)),
                removals: 0,
            }),
            chain: std::sync::OnceLock::new(),
            device: std::sync::OnceLock::new(),
            validation,
            rng: SystemRandom::new(),
        })
    }

    /// Replaces the key ring. When a key of the old ring is missing from
    /// the new one (an operator removed it: compromised, or retired), every
    /// verified token is forgotten, so none signed by that key is accepted
    /// from the cache afterwards. Key-set changes are rare; the cache refills.
    pub fn set_keys(&self, ring: KeyRing) {
        let removed = {
            let mut slot = self
                .ring
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let removed: Vec<String> = slot
                .ring
                .kids()
                .filter(|kid| ring.verifier(kid).is_none())
                .map(str::to_owned)
                .collect();
            slot.ring = Arc::new(ring);
            if !removed.is_empty() {
                slot.removals += 1;
            }
            removed
        };
        if !removed.is_empty() {
            // After the count is bumped: a verification that started under
            // the old ring and caches after this clear sees the new count
            // and takes its entry out again.
            self.verified.clear();
            tracing::info!(removed = ?removed, "signing keys removed; forgot every verified access token");
        }
    }

    fn keys(&self) -> Arc<KeyRing> {
        self.installed().0
    }

    /// The ring and its removal count, read together.
    fn installed(&self) -> (Arc<KeyRing>, u64) {
        let slot = self
            .ring
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (slot.ring.clone(), slot.removals)
    }

    /// Whether a key can sign at `now_ms` (readiness).
    pub fn can_sign(&self, now_ms: u64) -> bool {
        self.keys().signer(now_ms).is_some()
    }

    /// Whether any key is loaded: before the token store first answers
    /// (start-up with the cluster down) none is, and a token that does not
    /// verify may well be a good one.
    pub fn has_keys(&self) -> bool {
        !self.keys().is_empty()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.keys().jwks()
    }

    /// The system random generator shared by token minting.
    pub fn rng(&self) -> &SystemRandom {
        &self.rng
    }

    /// Access-token lifetime in seconds.
    pub fn access_ttl_secs(&self) -> u64 {
        self.cfg.access_ttl.as_secs()
    }

    /// Signs an access token for a session opened at `auth_time_ms` with
    /// the methods `amr`.
    pub fn issue_access(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: u64,
        amr: &[String],
        auth_time_ms: u64,
    ) -> Result<AccessToken, AuthError> {
        let keys = self.keys();
        let key = keys.signer(now_ms).ok_or_else(|| {
            // None loaded yet (the token store has not answered since
            // start-up), or none active: readiness reports it too.
            tracing::warn!("no signing key is active: cannot issue access tokens");
            AuthError::Unavailable {
                retry_after_secs: 1,
            }
        })?;
        let mut jti = [0u8; 16];
        self.rng
            .fill(&mut jti)
            .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
        let iat = now_ms / 1000;
        let ttl = self.cfg.access_ttl.as_secs();
        let claims = AccessClaims {
            iss: self.cfg.issuer.clone(),
            aud: self.cfg.audience.clone(),
            sub: user_id.to_uuid_string(),
            sid: session_id.to_b64(),
            jti: URL_SAFE_NO_PAD.encode(jti),
            iat,
            exp: iat + ttl,
            amr: amr.to_vec(),
            auth_time: Some(auth_time_ms / 1000),
        };
        let token = key
            .sign(&claims)
            .map_err(|e| AuthError::Internal(format!("cannot encode claims: {e}")))?;
        Ok(AccessToken {
            token,
            expires_in: ttl,
        })
    }

    /// Installs the refresh-token chain key (once, at start).
    pub fn set_chain_key(&self, key: &[u8; 32]) {
        let _ = self.chain.set(refresh::Chain::new(key));
    }

    /// Installs the device-token keys (once, at start).
    pub fn set_device_key(&self, key: device::DeviceKey) {
        let _ = self.device.set(key);
    }

    /// The device-token key.
    pub fn device_key(&self) -> Result<&device::DeviceKey, AuthError> {
        self.device
            .get()
            .ok_or_else(|| AuthError::Internal("the device-token key is not loaded".into()))
    }

    /// The refresh-token chain.
    pub fn chain(&self) -> Result<&refresh::Chain, AuthError> {
        self.chain
            .get()
            // Not loaded yet: the token store has not answered since start-up.
            .ok_or(AuthError::Unavailable {
                retry_after_secs: 1,
            })
    }

    /// A session's first refresh token: the token text and the hash to store.
    pub fn first_refresh(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<(Zeroizing<String>, TokenHash), AuthError> {
        let secret = refresh::first_secret(&self.rng)
            .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
        Ok((
            refresh::encode(user_id, session_id, 0, &secret),
            refresh::hash_secret(&secret),
        ))
    }

    /// A new random session id.
    pub fn new_session_id(&self) -> Result<SessionId, AuthError> {
        let mut sid = [0u8; 16];
        self.rng
            .fill(&mut sid)
            .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
        Ok(SessionId(sid))
    }

    /// Whether `token` is a well-formed JWT naming a key id this process has
    /// not loaded (so reloading the shared keys might let it verify).
    pub fn names_unknown_key(&self, token: &str) -> bool {
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return false;
        }
        match jsonwebtoken::decode_header(token) {
            Ok(h) => h
                .kid
                .is_some_and(|kid| self.keys().verifier(&kid).is_none()),
            Err(_) => false,
        }
    }

    /// Verifies an access token's signature, issuer, audience and expiry.
    /// Verified tokens are cached, so repeated calls cost a map lookup.
    /// Session liveness is the caller's check.
    pub fn verify_access(&self, token: &str, now_ms: u64) -> Result<VerifiedAccess, TokenProblem> {
        let now = now_ms / 1000;
        if let Some(hit) = self.verified.get(token) {
            metrics::counter!(m::TOKEN_VERIFICATIONS_TOTAL, "cache" => "hit", "result" => "ok")
                .increment(1);
            if now >= hit.claims.exp {
                self.verified.remove(token);
                return Err(TokenProblem::Expired);
            }
            return Ok(hit);
        }
        let (keys, removals) = self.installed();
        let result = self.verify_uncached(&keys, token, now);
        let label = if result.is_ok() { "ok" } else { "invalid" };
        metrics::counter!(m::TOKEN_VERIFICATIONS_TOTAL, "cache" => "miss", "result" => label)
            .increment(1);
        let v = result?;
        self.verified.insert(token.to_owned(), v.clone());
        if self.installed().1 != removals {
            // A key was removed while this token was being verified: it may
            // have been the signer, and the flush may have run before the
            // insert. Accept this once (it verified), but do not cache it.
            self.verified.remove(token);
        }
        Ok(v)
    }

    fn verify_uncached(
        &self,
        keys: &KeyRing,
        token: &str,
        now: u64,
    ) -> Result<VerifiedAccess, TokenProblem> {
        if token.len() > MAX_ACCESS_TOKEN_LEN {
            return Err(TokenProblem::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenProblem::Invalid)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenProblem::Invalid);
        }
        let kid = header.kid.ok_or(TokenProblem::Invalid)?;
        let key = keys.verifier(&kid).ok_or(TokenProblem::Invalid)?;
        let data =
            jsonwebtoken::decode::<AccessClaims>(token, key.decoding_key(), &self.validation)
                .map_err(|_| TokenProblem::Invalid)?;
        let claims = data.claims;
        if now >= claims.exp {
            return Err(TokenProblem::Expired);
        }
        if claims.iat > now + 60 {
            // Issued in the future: not one of ours.
            return Err(TokenProblem::Invalid);
        }
        let user_id = UserId::parse(&claims.sub).ok_or(TokenProblem::Invalid)?;
        let session_id = SessionId::from_b64(&claims.sid).ok_or(TokenProblem::Invalid)?;
        Ok(VerifiedAccess {
            user_id,
            session_id,
            claims: Arc::new(claims),
        })
    }
}

#[cfg(test)]
mod tests;
