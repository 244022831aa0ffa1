//! Rows of the `users` table and their mapping to [`UserRecord`].

use scylla::DeserializeRow;
use uuid::Uuid;

use crate::codec;
use crate::model::{AccountState, OutboxRecord, UserId, UserRecord};
use crate::{StoreError, StoreResult};

/// A `users` row as read (columns matched by name).
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub(crate) struct UserRow {
    pub id: Uuid,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub name: Option<String>,
    pub picture_url: Option<String>,
    pub email_verified: Option<bool>,
    pub mfa_enabled: Option<bool>,
    pub created_at_ms: Option<i64>,
    pub updated_at_ms: Option<i64>,
    pub version: Option<i64>,
    pub account_state: Option<Vec<u8>>,
}

/// The `account_state` column of a record: null when there is none.
fn account_blob(u: &UserRecord) -> Option<Vec<u8>> {
    (u.account != AccountState::default()).then(|| codec::encode_account(&u.account))
}

/// CQL has no unsigned integers: times and versions are stored as `bigint`.
pub(crate) fn to_bigint(what: &str, v: u64) -> StoreResult<i64> {
    i64::try_from(v)
        .map_err(|_| StoreError::Backend(format!("{what} {v} does not fit a CQL bigint")))
}

fn from_bigint(what: &str, v: Option<i64>) -> StoreResult<u64> {
    let v = v.ok_or_else(|| StoreError::Corrupt(format!("user row without {what}")))?;
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("user row with negative {what} {v}")))
}

pub(crate) fn uuid(id: UserId) -> Uuid {
    Uuid::from_bytes(id.0)
}

pub(crate) fn user_id(id: Uuid) -> UserId {
    UserId(id.into_bytes())
}

impl UserRow {
    /// The row's domain record; a row missing what every user has is corrupt.
    pub(crate) fn into_record(self) -> StoreResult<UserRecord> {
        let email = self
            .email
            .ok_or_else(|| StoreError::Corrupt(format!("user row {} without email", self.id)))?;
        let password_hash = self.password_hash.ok_or_else(|| {
            StoreError::Corrupt(format!("user row {} without password hash", self.id))
        })?;
        let version = from_bigint("version", self.version)?;
        if version == 0 {
            return Err(StoreError::Corrupt(format!(
                "user row {} with version 0",
                self.id
            )));
        }
        Ok(UserRecord {
            id: user_id(self.id),
            email,
            password_hash,
            name: self.name,
            picture_url: self.picture_url,
            email_verified: self.email_verified.unwrap_or(false),
            mfa_enabled: self.mfa_enabled.unwrap_or(false),
            created_at_ms: from_bigint("created_at_ms", self.created_at_ms)?,
            updated_at_ms: from_bigint("updated_at_ms", self.updated_at_ms)?,
            version,
            account: match self.account_state {
                Some(b) if !b.is_empty() => codec::decode_account(&b)?,
                _ => AccountState::default(),
            },
        })
    }
}

/// The values of `INSERT_USER`, in its column order.
pub(crate) type InsertValues<'a> = (
    Uuid,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    bool,
    bool,
    i64,
    i64,
    i64,
    Option<Vec<u8>>,
);

pub(crate) fn insert_values(u: &UserRecord) -> StoreResult<InsertValues<'_>> {
    Ok((
        uuid(u.id),
        &u.email,
        &u.password_hash,
        u.name.as_deref(),
        u.picture_url.as_deref(),
        u.email_verified,
        u.mfa_enabled,
        to_bigint("created_at_ms", u.created_at_ms)?,
        to_bigint("updated_at_ms", u.updated_at_ms)?,
        to_bigint("version", u.version)?,
        account_blob(u),
    ))
}

/// The values of `UPDATE_USER` (`SET` fields, key, then the conditions).
pub(crate) type UpdateValues<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    bool,
    bool,
    i64,
    i64,
    Option<Vec<u8>>,
    Uuid,
    i64,
    &'a str,
);

pub(crate) fn update_values(
    u: &UserRecord,
    expected_version: u64,
) -> StoreResult<UpdateValues<'_>> {
    Ok((
        &u.password_hash,
        u.name.as_deref(),
        u.picture_url.as_deref(),
        u.email_verified,
        u.mfa_enabled,
        to_bigint("updated_at_ms", u.updated_at_ms)?,
        to_bigint("version", u.version)?,
        account_blob(u),
        uuid(u.id),
        to_bigint("version", expected_version)?,
        &u.email,
    ))
}

/// The values of `UPDATE_USER_EMAIL` (`SET` fields, key, then the condition).
pub(crate) type UpdateEmailValues<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    bool,
    bool,
    i64,
    i64,
    Option<Vec<u8>>,
    Uuid,
    i64,
);

pub(crate) fn update_email_values(
    u: &UserRecord,
    expected_version: u64,
) -> StoreResult<UpdateEmailValues<'_>> {
    Ok((
        &u.email,
        &u.password_hash,
        u.name.as_deref(),
        u.picture_url.as_deref(),
        u.email_verified,
        u.mfa_enabled,
        to_bigint("updated_at_ms", u.updated_at_ms)?,
        to_bigint("version", u.version)?,
        account_blob(u),
        uuid(u.id),
        to_bigint("version", expected_version)?,
    ))
}

/// An `outbox` row as read by `BUCKET_MAIL` (columns matched by name).
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub(crate) struct OutboxRow {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub created_at_ms: Option<i64>,
    pub due_at_ms: Option<i64>,
    pub attempts: Option<i32>,
    pub payload: Option<Vec<u8>>,
}

impl OutboxRow {
    /// The row's record; a row without its user or payload is corrupt.
    pub(crate) fn into_record(self) -> StoreResult<OutboxRecord> {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("outbox row {} without {what}", self.id));
        let user_id = self.user_id.ok_or_else(|| corrupt("user_id"))?;
        let payload = self.payload.clone().ok_or_else(|| corrupt("payload"))?;
        let ms = |what: &str, v: Option<i64>| {
            u64::try_from(v.unwrap_or(0))
                .map_err(|_| StoreError::Corrupt(format!("outbox row with negative {what}")))
        };
        Ok(OutboxRecord {
            id: self.id.into_bytes(),
            user_id: self::user_id(user_id),
            created_at_ms: ms("created_at_ms", self.created_at_ms)?,
            due_at_ms: ms("due_at_ms", self.due_at_ms)?,
            attempts: u32::try_from(self.attempts.unwrap_or(0)).unwrap_or(0),
            payload,
        })
    }
}

/// The values of `INSERT_MAIL`, in its column order.
pub(crate) type OutboxValues<'a> = (i32, Uuid, Uuid, i64, i64, i32, &'a [u8]);

pub(crate) fn outbox_values(m: &OutboxRecord) -> StoreResult<OutboxValues<'_>> {
    Ok((
        super::schema::outbox_bucket(&m.id),
        Uuid::from_bytes(m.id),
        uuid(m.user_id),
        to_bigint("created_at_ms", m.created_at_ms)?,
        to_bigint("due_at_ms", m.due_at_ms)?,
        i32::try_from(m.attempts).unwrap_or(i32::MAX),
        &m.payload,
    ))
}
