//! Every CQL statement the store runs, prepared once at start-up. `{ks}`
//! stands for the keyspace. Kept in one place so `migrate --print` can show
//! them and a test can check their keys, conditions and TTLs.

/// Writes a new user row (before its email is claimed, so nothing can find
/// a half-written user). Idempotent: retried safely.
pub(crate) const INSERT_USER: &str = "INSERT INTO {ks}.users (id, email, password_hash, name, picture_url, email_verified, mfa_enabled, created_at_ms, updated_at_ms, version, account_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Removes a user row whose email claim failed (never visible to anyone).
pub(crate) const DELETE_USER: &str = "DELETE FROM {ks}.users WHERE id = ?";

/// Reads a user by id: one partition.
pub(crate) const GET_USER: &str = "SELECT id, email, password_hash, name, picture_url, email_verified, mfa_enabled, created_at_ms, updated_at_ms, version, account_state FROM {ks}.users WHERE id = ?";

/// Replaces a user's mutable fields if its version and email are as
/// expected (a lightweight transaction).
pub(crate) const UPDATE_USER: &str = "UPDATE {ks}.users SET password_hash = ?, name = ?, picture_url = ?, email_verified = ?, mfa_enabled = ?, updated_at_ms = ?, version = ?, account_state = ? WHERE id = ? IF version = ? AND email = ?";

/// Replaces a user's fields including the email if its version is as
/// expected (the middle step of an email change).
pub(crate) const UPDATE_USER_EMAIL: &str = "UPDATE {ks}.users SET email = ?, password_hash = ?, name = ?, picture_url = ?, email_verified = ?, mfa_enabled = ?, updated_at_ms = ?, version = ?, account_state = ? WHERE id = ? IF version = ?";

/// Claims an email for a new user: the uniqueness check.
pub(crate) const CLAIM_EMAIL: &str = "INSERT INTO {ks}.users_by_email (email, user_id, claimed_at_ms) VALUES (?, ?, ?) IF NOT EXISTS";

/// Reserves an email for an email change; the reservation expires by itself
/// if the change never completes.
pub(crate) const RESERVE_EMAIL: &str = "INSERT INTO {ks}.users_by_email (email, user_id, claimed_at_ms) VALUES (?, ?, ?) IF NOT EXISTS USING TTL ?";

/// Makes a reservation permanent (TTL 0) once the user row carries the email.
pub(crate) const FINALIZE_EMAIL: &str = "UPDATE {ks}.users_by_email USING TTL 0 SET user_id = ?, claimed_at_ms = ? WHERE email = ? IF user_id = ?";

/// Releases an email, only if it still belongs to the given user.
pub(crate) const RELEASE_EMAIL: &str =
    "DELETE FROM {ks}.users_by_email WHERE email = ? IF user_id = ?";

/// Resolves an email: one partition. The TTL tells a reservation (not yet
/// the user's email) from a claim.
pub(crate) const FIND_EMAIL: &str =
    "SELECT user_id, TTL(user_id) FROM {ks}.users_by_email WHERE email = ?";

/// Readiness: a LOCAL_QUORUM read of one (absent) user partition.
pub(crate) const PING: &str =
    "SELECT id FROM {ks}.users WHERE id = 00000000-0000-0000-0000-000000000000";

/// Queues an outbox message (before the user row vouches for it).
/// Idempotent: retried safely.
pub(crate) const INSERT_MAIL: &str = "INSERT INTO {ks}.outbox (bucket, id, user_id, created_at_ms, due_at_ms, attempts, payload, claimed_until_ms) VALUES (?, ?, ?, ?, ?, ?, ?, 0)";

/// The messages of one bucket (the outbox holds only undelivered ones).
pub(crate) const BUCKET_MAIL: &str = "SELECT id, user_id, created_at_ms, due_at_ms, attempts, payload FROM {ks}.outbox WHERE bucket = ?";

/// Takes a message for delivery unless another mailer's claim is current.
/// A deleted message does not apply (the condition needs the row).
pub(crate) const CLAIM_MAIL: &str = "UPDATE {ks}.outbox SET claimed_until_ms = ? WHERE bucket = ? AND id = ? IF claimed_until_ms < ?";

/// Schedules another attempt and releases the claim.
pub(crate) const RETRY_MAIL: &str = "UPDATE {ks}.outbox SET due_at_ms = ?, attempts = ?, claimed_until_ms = 0 WHERE bucket = ? AND id = ? IF EXISTS";

/// Removes a delivered or abandoned message.
pub(crate) const DELETE_MAIL: &str = "DELETE FROM {ks}.outbox WHERE bucket = ? AND id = ?";

/// The first page of a scan of every user, in token order (background
/// maintenance: re-sealing secrets under the newest data key).
pub(crate) const SCAN_USERS_FIRST: &str = "SELECT id, email, password_hash, name, picture_url, email_verified, mfa_enabled, created_at_ms, updated_at_ms, version, account_state FROM {ks}.users LIMIT ?";

/// The next page of the scan: users after the last one seen, in token order.
pub(crate) const SCAN_USERS_AFTER: &str = "SELECT id, email, password_hash, name, picture_url, email_verified, mfa_enabled, created_at_ms, updated_at_ms, version, account_state FROM {ks}.users WHERE token(id) > token(?) LIMIT ?";

/// Claims an identity for a user: the uniqueness check.
pub(crate) const CLAIM_IDENTITY: &str = "INSERT INTO {ks}.identities (provider, subject, user_id, claimed_at_ms) VALUES (?, ?, ?, ?) IF NOT EXISTS";

/// Releases an identity, only if it still belongs to the given user.
pub(crate) const RELEASE_IDENTITY: &str =
    "DELETE FROM {ks}.identities WHERE provider = ? AND subject = ? IF user_id = ?";

/// Resolves an identity: one partition.
pub(crate) const FIND_IDENTITY: &str =
    "SELECT user_id, claimed_at_ms FROM {ks}.identities WHERE provider = ? AND subject = ?";

/// Every statement, with a name, for `migrate --print`.
pub(crate) const ALL: &[(&str, &str)] = &[
    ("insert_user", INSERT_USER),
    ("delete_user", DELETE_USER),
    ("get_user", GET_USER),
    ("update_user", UPDATE_USER),
    ("update_user_email", UPDATE_USER_EMAIL),
    ("claim_email", CLAIM_EMAIL),
    ("reserve_email", RESERVE_EMAIL),
    ("finalize_email", FINALIZE_EMAIL),
    ("release_email", RELEASE_EMAIL),
    ("find_email", FIND_EMAIL),
    ("ping", PING),
    ("insert_mail", INSERT_MAIL),
    ("bucket_mail", BUCKET_MAIL),
    ("claim_mail", CLAIM_MAIL),
    ("retry_mail", RETRY_MAIL),
    ("delete_mail", DELETE_MAIL),
    ("scan_users_first", SCAN_USERS_FIRST),
    ("scan_users_after", SCAN_USERS_AFTER),
    ("claim_identity", CLAIM_IDENTITY),
    ("release_identity", RELEASE_IDENTITY),
    ("find_identity", FIND_IDENTITY),
];
