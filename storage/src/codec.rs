//! A small binary record codec for backends that store bytes.
//!
//! Each record starts with a one-byte format tag, then fields in a fixed order:
//! integers as LEB128 varints, byte strings and text with a varint length,
//! options with a presence byte. Fields added later go at the end and decode to
//! their default when an older record ends before them, so records written by
//! an earlier version stay readable.

use crate::StoreError;
use crate::model::{
    AccountState, LinkedIdentity, OutboxRecord, PendingEmailChange, PendingToken, SessionId,
    SessionRecord, SigningKeyRecord, StoredPasskey, TotpState, UserId, UserRecord,
};

/// Format tag of [`UserRecord`] encodings.
const USER_V1: u8 = 1;
/// Format tag of [`AccountState`] encodings (nested in a user record, and
/// the ScyllaDB `account_state` column). Fields added later go at the end,
/// and a record ends early when the rest is empty: a reader of an older
/// version ignores what follows the fields it knows, so pods of two
/// versions read each other's records during a rolling upgrade.
const ACCOUNT_V1: u8 = 1;
/// Format tag of [`OutboxRecord`] encodings.
const OUTBOX_V1: u8 = 1;
/// Format tag of [`SessionRecord`] encodings.
const SESSION_V1: u8 = 1;
/// Format tag of [`SigningKeyRecord`] encodings.
const KEY_V1: u8 = 1;

/// Longest text or byte field accepted when decoding (guards against damage).
const MAX_FIELD: usize = 1 << 20;

pub(crate) struct Enc(Vec<u8>);

impl Enc {
    pub(crate) fn new(tag: u8) -> Enc {
        let mut v = Vec::with_capacity(256);
        v.push(tag);
        Enc(v)
    }
    pub(crate) fn u64(&mut self, mut x: u64) -> &mut Self {
        loop {
            let b = (x & 0x7f) as u8;
            x >>= 7;
            if x == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn fixed(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(s.as_bytes())
    }
    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            None => self.0.push(0),
            Some(s) => {
                self.0.push(1);
                self.str(s);
            }
        }
        self
    }
    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.0.push(u8::from(b));
        self
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

pub(crate) struct Dec<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str, tag: u8) -> Result<Dec<'a>, StoreError> {
        match buf.split_first() {
            Some((t, rest)) if *t == tag => Ok(Dec { buf: rest, what }),
            Some((t, _)) => Err(StoreError::Corrupt(format!(
                "{what}: unknown format tag {t}"
            ))),
            None => Err(StoreError::Corrupt(format!("{what}: empty record"))),
        }
    }
    fn err(&self, msg: &str) -> StoreError {
        StoreError::Corrupt(format!("{}: {msg}", self.what))
    }
    pub(crate) fn at_end(&self) -> bool {
        self.buf.is_empty()
    }
    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        let mut x: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (b, rest) = self
                .buf
                .split_first()
                .ok_or_else(|| self.err("truncated"))?;
            self.buf = rest;
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(self.err("varint too long"))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let n = usize::try_from(self.u64()?).map_err(|_| self.err("length overflow"))?;
        if n > MAX_FIELD || n > self.buf.len() {
            return Err(self.err("field length out of range"));
        }
        let (b, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(b)
    }
    pub(crate) fn fixed<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        if self.buf.len() < N {
            return Err(self.err("truncated"));
        }
        let (b, rest) = self.buf.split_at(N);
        self.buf = rest;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }
    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("text is not UTF-8"))
    }
    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.byte()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            _ => Err(self.err("bad option tag")),
        }
    }
    pub(crate) fn bool(&mut self) -> Result<bool, StoreError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.err("bad bool")),
        }
    }
    fn byte(&mut self) -> Result<u8, StoreError> {
        let (b, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| self.err("truncated"))?;
        self.buf = rest;
        Ok(*b)
    }
}

pub(crate) fn encode_user(u: &UserRecord) -> Vec<u8> {
    let mut e = Enc::new(USER_V1);
    e.fixed(&u.id.0)
        .str(&u.email)
        .str(&u.password_hash)
        .opt_str(u.name.as_deref())
        .opt_str(u.picture_url.as_deref())
        .bool(u.email_verified)
        .bool(u.mfa_enabled)
        .u64(u.created_at_ms)
        .u64(u.updated_at_ms)
        .u64(u.version);
    // Added after v1's first fields: absent in older records (default).
    if u.account != AccountState::default() {
        e.bytes(&encode_account(&u.account));
    }
    e.finish()
}

fn enc_token(e: &mut Enc, t: Option<&PendingToken>) {
    match t {
        None => {
            e.u64(0);
        }
        Some(t) => {
            e.u64(1).fixed(&t.hash).u64(t.expires_at_ms);
        }
    }
}

fn dec_token(d: &mut Dec<'_>) -> Result<Option<PendingToken>, StoreError> {
    Ok(match d.u64()? {
        0 => None,
        1 => Some(PendingToken {
            hash: d.fixed()?,
            expires_at_ms: d.u64()?,
        }),
        _ => return Err(d.err("bad token presence")),
    })
}

/// Encodes the account state on its own (the embedded user record nests it;
/// the ScyllaDB backend stores it in one blob column).
pub(crate) fn encode_account(a: &AccountState) -> Vec<u8> {
    let mut e = Enc::new(ACCOUNT_V1);
    enc_token(&mut e, a.verify_email.as_ref());
    enc_token(&mut e, a.password_reset.as_ref());
    match &a.email_change {
        None => {
            e.u64(0);
        }
        Some(c) => {
            e.u64(1);
            enc_token(&mut e, Some(&c.token));
            e.str(&c.new_email);
        }
    }
    match &a.totp {
        None => {
            e.u64(0);
        }
        Some(t) => {
            e.u64(1)
                .bytes(&t.secret_sealed)
                .bool(t.confirmed)
                .u64(t.last_step.map_or(0, |s| s.saturating_add(1)))
                .u64(t.recovery_hashes.len() as u64);
            for h in &t.recovery_hashes {
                e.fixed(h);
            }
        }
    }
    // Added after the first release, in this order; the record ends as soon
    // as the rest is empty (absent means empty).
    let sealed = a.totp.as_ref().map_or(&[][..], |t| &t.recovery_sealed[..]);
    let tail = [
        !a.outbox.is_empty(),
        a.mfa_login.is_some(),
        a.credentials_epoch != 0,
        a.device_epoch != 0,
        !sealed.is_empty(),
        !a.identities.is_empty(),
        !a.passkeys.is_empty(),
    ];
    let last = tail.iter().rposition(|present| *present);
    if last.is_some() {
        e.u64(a.outbox.len() as u64);
        for id in &a.outbox {
            e.fixed(id);
        }
    }
    if last >= Some(1) {
        enc_token(&mut e, a.mfa_login.as_ref());
    }
    if last >= Some(2) {
        e.u64(a.credentials_epoch);
    }
    if last >= Some(3) {
        e.u64(a.device_epoch);
    }
    if last >= Some(4) {
        e.bytes(sealed);
    }
    if last >= Some(5) {
        e.u64(a.identities.len() as u64);
        for i in &a.identities {
            e.str(&i.provider)
                .str(&i.subject)
                .opt_str(i.email.as_deref())
                .bool(i.email_verified)
                .u64(i.linked_at_ms);
        }
    }
    if last >= Some(6) {
        e.u64(a.passkeys.len() as u64);
        for p in &a.passkeys {
            e.bytes(&p.id)
                .str(&p.name)
                .u64(p.created_at_ms)
                .u64(p.last_used_at_ms.map_or(0, |t| t.saturating_add(1)))
                .bool(p.backed_up)
                .bytes(&p.sealed);
        }
    }
    e.finish()
}

/// Decodes [`encode_account`]'s output (and ignores fields a newer version
/// added after the ones it knows).
pub(crate) fn decode_account(buf: &[u8]) -> Result<AccountState, StoreError> {
    let mut d = Dec::new(buf, "account state", ACCOUNT_V1)?;
    let verify_email = dec_token(&mut d)?;
    let password_reset = dec_token(&mut d)?;
    let email_change = match d.u64()? {
        0 => None,
        1 => Some(PendingEmailChange {
            token: dec_token(&mut d)?.ok_or_else(|| d.err("email change without token"))?,
            new_email: d.str()?,
        }),
        _ => return Err(d.err("bad email change presence")),
    };
    let mut totp = match d.u64()? {
        0 => None,
        1 => {
            let secret_sealed = d.bytes()?.to_vec();
            let confirmed = d.bool()?;
            let last_step = d.u64()?.checked_sub(1);
            let n = d.u64()?;
            if n > 64 {
                return Err(d.err("too many recovery codes"));
            }
            let mut recovery_hashes = Vec::new();
            for _ in 0..n {
                recovery_hashes.push(d.fixed()?);
            }
            Some(TotpState {
                secret_sealed,
                confirmed,
                last_step,
                recovery_hashes,
                recovery_sealed: Vec::new(),
            })
        }
        _ => return Err(d.err("bad totp presence")),
    };
    let mut outbox = Vec::new();
    if !d.at_end() {
        let n = d.u64()?;
        if n > 1024 {
            return Err(d.err("too many outbox ids"));
        }
        for _ in 0..n {
            outbox.push(d.fixed()?);
        }
    }
    let mfa_login = if d.at_end() { None } else { dec_token(&mut d)? };
    let credentials_epoch = if d.at_end() { 0 } else { d.u64()? };
    let device_epoch = if d.at_end() { 0 } else { d.u64()? };
    if !d.at_end() {
        let sealed = d.bytes()?.to_vec();
        match &mut totp {
            Some(t) => t.recovery_sealed = sealed,
            None if sealed.is_empty() => {}
            None => return Err(d.err("sealed recovery codes without TOTP")),
        }
    }
    let mut identities = Vec::new();
    if !d.at_end() {
        let n = d.u64()?;
        if n > 256 {
            return Err(d.err("too many linked identities"));
        }
        for _ in 0..n {
            identities.push(LinkedIdentity {
                provider: d.str()?,
                subject: d.str()?,
                email: d.opt_str()?,
                email_verified: d.bool()?,
                linked_at_ms: d.u64()?,
            });
        }
    }
    let mut passkeys = Vec::new();
    if !d.at_end() {
        let n = d.u64()?;
        if n > MAX_PASSKEYS {
            return Err(d.err("too many passkeys"));
        }
        for _ in 0..n {
            passkeys.push(StoredPasskey {
                id: d.bytes()?.to_vec(),
                name: d.str()?,
                created_at_ms: d.u64()?,
                last_used_at_ms: d.u64()?.checked_sub(1),
                backed_up: d.bool()?,
                sealed: d.bytes()?.to_vec(),
            });
        }
    }
    Ok(AccountState {
        verify_email,
        password_reset,
        email_change,
        totp,
        outbox,
        mfa_login,
        credentials_epoch,
        device_epoch,
        identities,
        passkeys,
    })
}

/// The most passkeys a record may hold (the engine allows fewer).
const MAX_PASSKEYS: u64 = 256;

pub(crate) fn encode_outbox(m: &OutboxRecord) -> Vec<u8> {
    let mut e = Enc::new(OUTBOX_V1);
    e.fixed(&m.id)
        .fixed(&m.user_id.0)
        .u64(m.created_at_ms)
        .u64(m.due_at_ms)
        .u64(u64::from(m.attempts))
        .bytes(&m.payload);
    e.finish()
}

pub(crate) fn decode_outbox(buf: &[u8]) -> Result<OutboxRecord, StoreError> {
    let mut d = Dec::new(buf, "outbox message", OUTBOX_V1)?;
    Ok(OutboxRecord {
        id: d.fixed()?,
        user_id: UserId(d.fixed()?),
        created_at_ms: d.u64()?,
        due_at_ms: d.u64()?,
        attempts: u32::try_from(d.u64()?).map_err(|_| d.err("attempts out of range"))?,
        payload: d.bytes()?.to_vec(),
    })
}

pub(crate) fn decode_user(buf: &[u8]) -> Result<UserRecord, StoreError> {
    let mut d = Dec::new(buf, "user record", USER_V1)?;
    Ok(UserRecord {
        id: UserId(d.fixed()?),
        email: d.str()?,
        password_hash: d.str()?,
        name: d.opt_str()?,
        picture_url: d.opt_str()?,
        email_verified: d.bool()?,
        mfa_enabled: d.bool()?,
        created_at_ms: d.u64()?,
        updated_at_ms: d.u64()?,
        version: d.u64()?,
        account: if d.at_end() {
            AccountState::default()
        } else {
            decode_account(d.bytes()?)?
        },
    })
}

pub(crate) fn encode_session(s: &SessionRecord) -> Vec<u8> {
    let mut e = Enc::new(SESSION_V1);
    e.fixed(&s.user_id.0)
        .fixed(&s.id.0)
        .u64(s.created_at_ms)
        .u64(s.last_used_at_ms)
        .u64(s.expires_at_ms)
        .u64(s.max_expires_at_ms)
        .opt_str(s.ip.as_deref())
        .opt_str(s.user_agent.as_deref())
        .fixed(&s.refresh_hash)
        .u64(s.generation)
        .u64(s.rotated_at_ms);
    // Added later: absent in older records (no amr, auth time unknown).
    e.u64(s.amr.len() as u64);
    for m in &s.amr {
        e.str(m);
    }
    e.u64(s.auth_time_ms);
    e.finish()
}

pub(crate) fn decode_session(buf: &[u8]) -> Result<SessionRecord, StoreError> {
    let mut d = Dec::new(buf, "session record", SESSION_V1)?;
    let mut s = SessionRecord {
        user_id: UserId(d.fixed()?),
        id: SessionId(d.fixed()?),
        created_at_ms: d.u64()?,
        last_used_at_ms: d.u64()?,
        expires_at_ms: d.u64()?,
        max_expires_at_ms: d.u64()?,
        ip: d.opt_str()?,
        user_agent: d.opt_str()?,
        refresh_hash: d.fixed()?,
        generation: d.u64()?,
        rotated_at_ms: d.u64()?,
        amr: Vec::new(),
        auth_time_ms: 0,
    };
    if !d.at_end() {
        let n = d.u64()?;
        if n > 16 {
            return Err(d.err("too many amr values"));
        }
        for _ in 0..n {
            s.amr.push(d.str()?);
        }
        s.auth_time_ms = d.u64()?;
    } else {
        // Opened before sessions kept their authentication: a password.
        s.amr.push("pwd".into());
        s.auth_time_ms = s.created_at_ms;
    }
    Ok(s)
}

pub(crate) fn encode_key(k: &SigningKeyRecord) -> Vec<u8> {
    let mut e = Enc::new(KEY_V1);
    e.str(&k.kid)
        .bytes(&k.pkcs8)
        .fixed(&k.public)
        .u64(k.created_at_ms)
        .u64(k.not_before_ms)
        .u64(k.expires_at_ms.map_or(0, |x| x.saturating_add(1)));
    e.finish()
}

pub(crate) fn decode_key(buf: &[u8]) -> Result<SigningKeyRecord, StoreError> {
    let mut d = Dec::new(buf, "signing key", KEY_V1)?;
    let k = SigningKeyRecord {
        kid: d.str()?,
        pkcs8: d.bytes()?.to_vec(),
        public: d.fixed()?,
        created_at_ms: d.u64()?,
        not_before_ms: d.u64()?,
        expires_at_ms: match d.u64()? {
            0 => None,
            x => Some(x - 1),
        },
    };
    if !d.at_end() {
        // Trailing fields from a newer version are ignored on purpose.
        tracing::debug!(kid = %k.kid, "signing key record has trailing fields");
    }
    Ok(k)
}

#[cfg(test)]
mod tests;
