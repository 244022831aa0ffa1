//! Mail from the flows: sealed into the outbox with the record write that
//! vouches for it, under the outbox bound and the mail limits.

use crate::core::Core;
use crate::error::AuthError;
use portcullis_storage::UserId;

use crate::steps::limits::limited;

/// Ids of queued messages a record lists at most; older ones are dropped
/// from the list (their messages were long delivered or given up).
const OUTBOX_IDS_KEPT: usize = 16;

/// Seals `letter` into an outbox message due now and lists its id in
/// `user`'s record; the caller writes both with `update_user_with_mail`.
pub(crate) fn queue_letter(
    core: &Core,
    user: &mut portcullis_storage::UserRecord,
    letter: &crate::mail::Letter,
) -> Result<portcullis_storage::OutboxRecord, AuthError> {
    use ring::rand::SecureRandom as _;
    outbox_has_room(core)?;
    let now = core.now_ms();
    let mut random = [0u8; 10];
    core.token_svc
        .rng()
        .fill(&mut random)
        .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
    // A UUIDv7 from the injected clock: time-ordered outbox ids.
    let id = *uuid::Builder::from_unix_timestamp_millis(now, &random)
        .into_uuid()
        .as_bytes();
    let payload = letter
        .seal(&core.mailer.keys, &id)
        .map_err(|e| AuthError::Internal(format!("sealing a letter: {e}")))?;
    let outbox = &mut user.account.outbox;
    outbox.push(id);
    if outbox.len() > OUTBOX_IDS_KEPT {
        outbox.drain(..outbox.len() - OUTBOX_IDS_KEPT);
    }
    Ok(portcullis_storage::OutboxRecord {
        id,
        user_id: user.id,
        created_at_ms: now,
        due_at_ms: now,
        attempts: 0,
        payload,
    })
}

/// The outbox is bounded: past the bound, flows that send mail wait (503)
/// until the mailer catches up, and an alert says why.
pub(crate) fn outbox_has_room(core: &Core) -> Result<(), AuthError> {
    if core.outbox_len.load(std::sync::atomic::Ordering::Relaxed) >= core.cfg.account.outbox_max {
        tracing::warn!("the outbox is full; a flow that sends mail was refused");
        return Err(AuthError::Unavailable {
            retry_after_secs: 30,
        });
    }
    Ok(())
}

/// The link to `page` carrying `token`, under the configured public base URL.
pub(crate) fn mail_link(core: &Core, page: &str, token: &str) -> String {
    let base = core
        .cfg
        .account
        .public_base_url
        .as_deref()
        .unwrap_or(&core.cfg.issuer)
        .trim_end_matches('/');
    format!("{base}/{page}?token={token}")
}

/// Queues a security notice (`letter`) with `user`'s record, under the
/// mail limits of its `kind` (each kind of notice is a flow of its own): when the limits or the outbox bound
/// refuse it, the notice is left out (the change it reports goes ahead; a
/// notice of the same kind went out moments ago, or the outbox is full and
/// alerting) rather than failing the change.
pub(crate) async fn notice(
    core: &Core,
    kind: &'static str,
    user: &mut portcullis_storage::UserRecord,
    letter: &crate::mail::Letter,
) -> Result<Vec<portcullis_storage::OutboxRecord>, AuthError> {
    match mail_allowed(core, kind, Some(user.id), &letter.to).await {
        Ok(()) => {}
        Err(AuthError::TooManyRequests { .. }) => {
            tracing::info!(user_id = %user.id, "security notice left out: one went out moments ago");
            return Ok(Vec::new());
        }
        Err(AuthError::Unavailable { .. }) if outbox_has_room(core).is_err() => {
            tracing::warn!(user_id = %user.id, "security notice left out: the outbox is full");
            return Ok(Vec::new());
        }
        Err(e) => return Err(e),
    }
    match queue_letter(core, user, letter) {
        Ok(m) => Ok(vec![m]),
        Err(AuthError::Unavailable { .. }) => {
            tracing::warn!(user_id = %user.id, "security notice left out: the outbox is full");
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// Admits one more message of `flow` for `user` (when known) to `address`
/// under every mail limit, per account and per recipient address, across
/// every pod; 429 `too_many_requests` otherwise. The address is hashed into
/// the limiter's key.
pub(crate) async fn mail_allowed(
    core: &Core,
    flow: &'static str,
    user: Option<UserId>,
    address: &str,
) -> Result<(), AuthError> {
    // A full outbox refuses before any budget is spent.
    outbox_has_room(core)?;
    let addr = hex_digest(mailbox(address).as_bytes());
    for (i, limit) in core.cfg.account.mail_limits.iter().enumerate() {
        if let Some(u) = user {
            limited(core, &format!("mail:{flow}:{i}:u:{u}"), limit).await?;
        }
        limited(core, &format!("mail:{flow}:{i}:a:{addr}"), limit).await?;
    }
    Ok(())
}

/// The mailbox an address delivers to, as far as limits go: the local
/// part without a `+tag` (`ada+1@x` and `ada+2@x` are one mailbox).
fn mailbox(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let local = local.split('+').next().unwrap_or(local);
            format!("{local}@{domain}")
        }
        None => address.to_owned(),
    }
}

/// The first 16 bytes of SHA-256 of `data`, in hex (limiter keys name no
/// address or email in clear).
fn hex_digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
