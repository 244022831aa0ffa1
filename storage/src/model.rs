//! The records the stores hold.
//!
//! Ids are opaque 16-byte values. Times are Unix milliseconds supplied by the
//! caller's injected clock. No record carries a plaintext secret except
//! [`SigningKeyRecord::pkcs8`], which backends must keep with owner-only access.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A user's id: a UUIDv7 (time-ordered, 16 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub [u8; 16]);

/// A session's id: 16 random bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

/// SHA-256 of a refresh-token secret. The secret itself is never stored.
pub type TokenHash = [u8; 32];

impl UserId {
    /// The canonical text form: a hyphenated lowercase UUID.
    pub fn to_uuid_string(&self) -> String {
        let h = hex(&self.0);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    /// Parses the hyphenated (or simple, 32 hex digits) UUID form.
    pub fn parse(s: &str) -> Option<UserId> {
        let compact: String = match s.len() {
            36 => {
                let b = s.as_bytes();
                if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
                    return None;
                }
                s.chars().filter(|c| *c != '-').collect()
            }
            32 => s.to_owned(),
            _ => return None,
        };
        let mut out = [0u8; 16];
        unhex(&compact, &mut out)?;
        Some(UserId(out))
    }

    /// Base64url form, used inside refresh tokens (22 characters).
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the base64url form.
    pub fn from_b64(s: &str) -> Option<UserId> {
        decode16(s).map(UserId)
    }
}

impl SessionId {
    /// Base64url form (22 characters), the session id clients see.
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Parses the base64url form.
    pub fn from_b64(s: &str) -> Option<SessionId> {
        decode16(s).map(SessionId)
    }
}

fn decode16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 22 {
        return None;
    }
    let mut out = [0u8; 16];
    let v = URL_SAFE_NO_PAD.decode(s).ok()?;
    if v.len() != 16 {
        return None;
    }
    out.copy_from_slice(&v);
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

fn unhex(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = (nib(b[2 * i])? << 4) | nib(b[2 * i + 1])?;
    }
    Some(())
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({})", self.to_uuid_string())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uuid_string())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.to_b64())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_b64())
    }
}

/// A user: credential, profile and status.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user's id.
    pub id: UserId,
    /// Normalized (trimmed, lowercase) email address; unique across users.
    pub email: String,
    /// The password hash as a PHC string (`$argon2id$...`, `$pbkdf2-sha256$...`)
    /// or an imported bcrypt hash (`$2b$...`).
    pub password_hash: String,
    /// Display name.
    pub name: Option<String>,
    /// Profile picture URL.
    pub picture_url: Option<String>,
    /// Whether the email address has been verified.
    pub email_verified: bool,
    /// Whether TOTP MFA is on.
    pub mfa_enabled: bool,
    /// Creation time (Unix ms).
    pub created_at_ms: u64,
    /// Last update time (Unix ms).
    pub updated_at_ms: u64,
    /// Optimistic-concurrency version; 1 at creation, +1 on every update.
    pub version: u64,
    /// Pending single-use tokens and the TOTP state: changed under the same
    /// version check as the rest of the record.
    pub account: AccountState,
}

/// An outstanding single-use token (email verification, password reset,
/// email change). Only a hash of it is stored.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PendingToken {
    /// SHA-256 of the token's secret, keyed by its purpose.
    pub hash: [u8; 32],
    /// When it stops being accepted (Unix ms).
    pub expires_at_ms: u64,
}

/// A requested email change, until its token is confirmed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PendingEmailChange {
    /// The token mailed to the new address.
    pub token: PendingToken,
    /// The normalized new address.
    pub new_email: String,
}

/// A user's TOTP authenticator.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct TotpState {
    /// The secret, sealed with the data key (AEAD) for this user.
    pub secret_sealed: Vec<u8>,
    /// Whether a code has confirmed the enrollment (then MFA is on).
    pub confirmed: bool,
    /// The last time step a code was accepted at (no replay within it).
    pub last_step: Option<u64>,
    /// Plain SHA-256 hashes of the unused recovery codes: only records
    /// written before recovery codes were sealed carry them (read, never
    /// written by new enrollments).
    pub recovery_hashes: Vec<[u8; 32]>,
    /// The keyed hashes of the unused recovery codes, sealed together with
    /// the data key for this user (AEAD): a leaked database without the data
    /// key does not let anyone test guesses against them.
    pub recovery_sealed: Vec<u8>,
}

/// The parts of a user record that flows other than the profile change.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct AccountState {
    /// The email verification token sent last.
    pub verify_email: Option<PendingToken>,
    /// The password reset token sent last.
    pub password_reset: Option<PendingToken>,
    /// The email change awaiting confirmation.
    pub email_change: Option<PendingEmailChange>,
    /// The TOTP authenticator, enrolled or confirmed.
    pub totp: Option<TotpState>,
    /// Ids of queued outbox messages this record vouches for: written in
    /// the same write as the change that sends them, removed once they are
    /// delivered. The mailer sends only messages listed here, so none goes
    /// out for a change that did not happen.
    pub outbox: Vec<[u8; 16]>,
    /// The `mfa_token` of a login waiting for its second factor.
    pub mfa_login: Option<PendingToken>,
    /// Bumped by every credential event (password reset or change, email
    /// change, MFA turned on or off, logout-all): a login that verified the
    /// password under an older epoch opens no session.
    pub credentials_epoch: u64,
    /// Bumped when the password is reset or changed: device tokens issued
    /// before stop counting as trusted.
    pub device_epoch: u64,
    /// Provider accounts (social login) linked to this user. A link holds
    /// only when the identity index names this user too (see
    /// [`UserStore::claim_identity`](crate::UserStore::claim_identity)).
    pub identities: Vec<LinkedIdentity>,
    /// Passkeys (WebAuthn credentials) registered to this user.
    pub passkeys: Vec<StoredPasskey>,
}

/// A passkey registered to a user. The credential itself (public key, sign
/// counter, flags) is kept sealed by the engine: the store sees only its id
/// and the parts the account's owner lists.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id the authenticator chose (raw bytes).
    pub id: Vec<u8>,
    /// The owner's name for it.
    pub name: String,
    /// When it was registered (Unix ms).
    pub created_at_ms: u64,
    /// When it last signed in (Unix ms), if ever.
    pub last_used_at_ms: Option<u64>,
    /// Whether the authenticator says the credential is backed up (synced).
    pub backed_up: bool,
    /// The engine's serialized credential, sealed for this user.
    pub sealed: Vec<u8>,
}

impl fmt::Debug for StoredPasskey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredPasskey")
            .field("id", &URL_SAFE_NO_PAD.encode(&self.id))
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

/// A provider account linked to a user: keyed by (provider, subject), never
/// by email.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkedIdentity {
    /// The provider's configured name (`google`, `corp`, ...).
    pub provider: String,
    /// The provider's stable subject identifier (`sub`).
    pub subject: String,
    /// The email the provider asserted when the link was made.
    pub email: Option<String>,
    /// Whether the provider asserted that email verified.
    pub email_verified: bool,
    /// When the link was made (Unix ms).
    pub linked_at_ms: u64,
}

/// The identity index's entry for a (provider, subject): which user holds it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct IdentityClaim {
    /// The user the identity is claimed for.
    pub user_id: UserId,
    /// When the claim was made (Unix ms): a claim whose user's record does
    /// not list the identity long after this was left by an interrupted
    /// sign-up or link.
    pub claimed_at_ms: u64,
}

/// A message waiting for the mailer (the outbox), queued in the same write
/// as the state change it reports.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxRecord {
    /// A UUIDv7: time-ordered, and the name of the delivered message.
    pub id: [u8; 16],
    /// Whose record vouches for it ([`AccountState::outbox`]).
    pub user_id: UserId,
    /// When it was queued (Unix ms).
    pub created_at_ms: u64,
    /// When the next delivery attempt is due (Unix ms).
    pub due_at_ms: u64,
    /// Delivery attempts made so far.
    pub attempts: u32,
    /// The message, sealed by the engine (it may carry a one-time token).
    pub payload: Vec<u8>,
}

impl fmt::Debug for OutboxRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxRecord")
            .field("id", &URL_SAFE_NO_PAD.encode(self.id))
            .field("user_id", &self.user_id)
            .field("due_at_ms", &self.due_at_ms)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Which parts are present, never their hashes or sealed secrets.
        f.debug_struct("AccountState")
            .field("verify_email", &self.verify_email.is_some())
            .field("password_reset", &self.password_reset.is_some())
            .field("email_change", &self.email_change.is_some())
            .field("totp_confirmed", &self.totp.as_ref().map(|t| t.confirmed))
            .field("outbox", &self.outbox.len())
            .field("mfa_login", &self.mfa_login.is_some())
            .field("credentials_epoch", &self.credentials_epoch)
            .field("device_epoch", &self.device_epoch)
            .field("identities", &self.identities.len())
            .field("passkeys", &self.passkeys.len())
            .finish()
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password hash is deliberately not printed.
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("email_verified", &self.email_verified)
            .field("mfa_enabled", &self.mfa_enabled)
            .field("created_at_ms", &self.created_at_ms)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A login session and the state of its refresh-token family.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The owning user.
    pub user_id: UserId,
    /// The session id.
    pub id: SessionId,
    /// Creation time (Unix ms).
    pub created_at_ms: u64,
    /// Last login or refresh (Unix ms).
    pub last_used_at_ms: u64,
    /// The current refresh token expires at this time (sliding; Unix ms).
    pub expires_at_ms: u64,
    /// Absolute end of the session, whatever the refreshes (Unix ms).
    pub max_expires_at_ms: u64,
    /// Client IP at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Hash of the current refresh token's secret.
    pub refresh_hash: TokenHash,
    /// Number of rotations so far (the current token's generation).
    pub generation: u64,
    /// When the current token was issued (Unix ms): creation or last rotation.
    pub rotated_at_ms: u64,
    /// How the user authenticated when the session opened (RFC 8176 `amr`
    /// values, e.g. `pwd`, `otp`): every access token of the session says so.
    pub amr: Vec<String>,
    /// When the user authenticated (Unix ms): the session's `auth_time`.
    pub auth_time_ms: u64,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("id", &self.id)
            .field("created_at_ms", &self.created_at_ms)
            .field("last_used_at_ms", &self.last_used_at_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("generation", &self.generation)
            .field("amr", &self.amr)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// Whether the session is still usable at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms && now_ms < self.max_expires_at_ms
    }
}

/// One refresh-token rotation: a compare-and-set performed atomically by the
/// backend. The engine decides what a presented token means (current,
/// recently superseded, reused ancestor, forged); the store only swaps the
/// current token if nobody else did first.
#[derive(Clone, Debug)]
pub struct RotateRequest {
    /// Owner of the session (routing key).
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
    /// The current token's hash as the caller read it.
    pub expected_hash: TokenHash,
    /// The current generation as the caller read it.
    pub expected_generation: u64,
    /// Hash of the new token's secret (generation `expected_generation + 1`).
    pub new_hash: TokenHash,
    /// Current time (Unix ms).
    pub now_ms: u64,
    /// New sliding expiry; the backend caps it at the session's absolute expiry.
    pub new_expires_at_ms: u64,
}

/// The result of a rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The token was still current; it is now replaced.
    Rotated(SessionRecord),
    /// The session's current token is no longer the expected one: another
    /// rotation won. Nothing was changed.
    Conflict,
    /// No live session.
    Invalid,
}

/// Account lockout parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window_ms` that lock the account.
    pub max_failures: u32,
    /// Window in which failures are counted (ms).
    pub window_ms: u64,
    /// First lock duration (ms); each further lock doubles it.
    pub base_lock_ms: u64,
    /// Longest lock (ms).
    pub max_lock_ms: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            window_ms: 15 * 60 * 1000,
            base_lock_ms: 60 * 1000,
            max_lock_ms: 60 * 60 * 1000,
        }
    }
}

impl LockoutPolicy {
    /// Duration of the `n`-th consecutive lock (1-based): base × 2^(n-1), capped.
    pub fn lock_duration_ms(&self, n: u32) -> u64 {
        let shift = n.saturating_sub(1).min(32);
        self.base_lock_ms
            .saturating_mul(1u64 << shift)
            .min(self.max_lock_ms)
    }
}

/// A rate limit shared by every pod: `count` requests per `period_ms`, in
/// bursts of up to `burst` (GCRA, like the in-process limiter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests per period.
    pub count: u32,
    /// The period (ms).
    pub period_ms: u64,
    /// Largest burst.
    pub burst: u32,
}

impl RateLimit {
    /// Time between two admitted requests at the steady rate (ms).
    pub fn emission_interval_ms(&self) -> f64 {
        self.period_ms as f64 / f64::from(self.count.max(1))
    }
}

/// Lockout state of one login key after an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LockoutStatus {
    /// Failures counted in the current window.
    pub failures: u32,
    /// Locked until this time (Unix ms), if locked.
    pub locked_until_ms: Option<u64>,
}

/// A JWT signing key and its schedule.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (RFC 7638 thumbprint, base64url).
    pub kid: String,
    /// PKCS#8 v2 document of the Ed25519 private key. Secret.
    pub pkcs8: Vec<u8>,
    /// Raw Ed25519 public key.
    pub public: [u8; 32],
    /// When the key was created and published (Unix ms).
    pub created_at_ms: u64,
    /// When the key starts signing (Unix ms). Published before this.
    pub not_before_ms: u64,
    /// When the key stops being published, once a successor signs (Unix ms).
    pub expires_at_ms: Option<u64>,
}

impl fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at_ms", &self.created_at_ms)
            .field("not_before_ms", &self.not_before_ms)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_id_text_forms_round_trip() {
        let id = UserId([
            0x01, 0x93, 0x4f, 0x2a, 0x7b, 0x3c, 0x7d, 0x11, 0x80, 0x22, 0x33, 0x44, 0x55, 0x66,
            0x77, 0x88,
        ]);
        let s = id.to_uuid_string();
        assert_eq!(s, "01934f2a-7b3c-7d11-8022-334455667788");
        assert_eq!(UserId::parse(&s), Some(id));
        assert_eq!(UserId::parse("01934f2a7b3c7d118022334455667788"), Some(id));
        assert_eq!(UserId::from_b64(&id.to_b64()), Some(id));
        assert_eq!(UserId::parse("01934f2a-7b3c-7d11-8022-33445566778g"), None);
        assert_eq!(UserId::parse("01934f2a+7b3c-7d11-8022-334455667788"), None);
        assert_eq!(UserId::from_b64("short"), None);
    }

    #[test]
    fn lock_durations_double_and_cap() {
        let p = LockoutPolicy::default();
        assert_eq!(p.lock_duration_ms(1), 60_000);
        assert_eq!(p.lock_duration_ms(2), 120_000);
        assert_eq!(p.lock_duration_ms(7), 3_600_000);
        assert_eq!(p.lock_duration_ms(100), 3_600_000);
    }
}

/// A cluster store's view of its database nodes (see `UserStore::nodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeCount {
    /// Nodes it holds at least one connection to.
    pub up: usize,
    /// Nodes it knows of but cannot reach.
    pub down: usize,
}
