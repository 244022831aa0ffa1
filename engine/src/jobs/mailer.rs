//! The mailer: delivers due outbox messages, with retries and backoff.
//!
//! For each due message it checks that the user's record vouches for it
//! (lists its id), so nothing is sent for a change that did not happen;
//! claims it (one mailer at a time across pods); opens the sealed letter;
//! sends it; then deletes the message and removes the id from the record
//! in the user's partition. A crash after sending and before the delete
//! sends the message again after the restart: at least once, with the same
//! Message-ID (and, for the file transport, the same file).

use std::sync::Arc;
use std::time::Duration;

use portcullis_storage::{OutboxRecord, UserId};

use crate::clock::ms;
use crate::core::Core;
use crate::error::AuthError;
use crate::mail::transport::SendError;
use crate::mail::{Letter, Mailer};
use crate::metrics::MAIL_TOTAL;
use crate::responder::Responder;
use crate::shard::PartitionKey;
use crate::steps::record::save_user;

/// Messages handled per poll, at most.
const BATCH: usize = 32;
/// Messages read per poll to choose the batch from, so that one account's
/// messages cannot fill it.
const SCAN: usize = 4 * BATCH;
/// Messages of one account delivered per poll, at most.
const PER_ACCOUNT: usize = 2;
/// How long a message whose record does not (yet) vouch for it waits
/// before it is looked at again, out of the way of the others.
const RECHECK: Duration = Duration::from_secs(15);
/// How long after it was queued a message's record may still be being
/// written (ScyllaDB queues the message first, then writes the record that
/// vouches for it): an unvouched message this young is looked at again at
/// the next poll rather than [`RECHECK`] later, so that the mailer meeting it
/// between the two writes does not delay it.
const SETTLE: Duration = Duration::from_secs(5);
/// How long a claim keeps other mailers off a message.
const CLAIM: Duration = Duration::from_secs(120);
/// How long a queued message may wait for its record to vouch for it
/// (a ScyllaDB write whose outcome was unknown) before it is dropped.
pub const VOUCH_GRACE: Duration = Duration::from_secs(300);
/// Attempts before a message is given up (the backoff reaches 1 h; about a
/// day in all).
pub const MAX_ATTEMPTS: u32 = 30;

/// Delay before attempt `attempts + 1`: 2^attempts seconds, at most 1 h.
pub fn backoff(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(12)).min(Duration::from_secs(3600))
}

fn count(outcome: &'static str) {
    metrics::counter!(MAIL_TOTAL, "outcome" => outcome).increment(1);
}

/// At most [`PER_ACCOUNT`] messages of each account, oldest first, up to
/// [`BATCH`] in all: no account's burst holds up another's mail.
fn fair_batch(due: Vec<OutboxRecord>) -> Vec<OutboxRecord> {
    let mut per_user: std::collections::HashMap<UserId, usize> = Default::default();
    let mut out = Vec::with_capacity(BATCH);
    for m in due {
        let n = per_user.entry(m.user_id).or_default();
        if *n < PER_ACCOUNT {
            *n += 1;
            out.push(m);
            if out.len() >= BATCH {
                break;
            }
        }
    }
    out
}

/// The job: one poll.
pub(super) async fn run(core: Arc<Core>) {
    deliver_due(&core).await;
}

/// One poll: delivers what is due. Returns how many messages were sent.
pub(crate) async fn deliver_due(core: &Arc<Core>) -> usize {
    let mailer = &core.mailer;
    let now = core.now_ms();
    let due = match core
        .user_op("due_mail", core.users.due_mail(now, SCAN))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "reading the outbox failed");
            return 0;
        }
    };
    match core.users.outbox_len().await {
        Ok(Some(n)) => {
            core.outbox_len
                .store(n, std::sync::atomic::Ordering::Relaxed);
            metrics::gauge!(crate::metrics::OUTBOX_MESSAGES).set(n as f64);
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(error = %e, "counting the outbox failed"),
    }
    let mut sent = 0;
    for m in fair_batch(due) {
        match deliver(core, mailer, m, now).await {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "outbox step failed; retried at the next poll"),
        }
    }
    sent
}

async fn deliver(
    core: &Arc<Core>,
    mailer: &Mailer,
    mut m: OutboxRecord,
    now: u64,
) -> Result<bool, portcullis_storage::StoreError> {
    let user = core.users.get_user(m.user_id).await?;
    let vouched = user
        .as_ref()
        .is_some_and(|u| u.account.outbox.contains(&m.id));
    if !vouched {
        let age = now.saturating_sub(m.created_at_ms);
        if age > ms(VOUCH_GRACE) {
            // The change it reports never happened (or the user is gone).
            core.users.delete_mail(&m).await?;
            count("unvouched");
        } else if age < ms(SETTLE) {
            // Most likely its record is being written right now: the next
            // poll sees it vouched.
        } else {
            // Its record may still vouch for it (a write whose outcome was
            // unknown): look again later, out of the way of due messages
            // behind it.
            m.due_at_ms = now + ms(RECHECK);
            core.users.retry_mail(&m).await?;
        }
        return Ok(false);
    }
    if !core.users.claim_mail(&m, now, now + ms(CLAIM)).await? {
        return Ok(false);
    }
    let letter = match Letter::open(&mailer.keys, &m.id, &m.payload) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(user_id = %m.user_id, error = %e, "a queued message does not open; dropped");
            core.users.delete_mail(&m).await?;
            unvouch(core, m.user_id, m.id).await;
            count("dropped");
            return Ok(false);
        }
    };
    match mailer.transport.send(&mailer.from, &m.id, &letter).await {
        Ok(()) => {
            core.users.delete_mail(&m).await?;
            unvouch(core, m.user_id, m.id).await;
            count("sent");
            Ok(true)
        }
        Err(SendError::Transient(e)) if m.attempts + 1 < MAX_ATTEMPTS => {
            m.attempts += 1;
            m.due_at_ms = now + ms(backoff(m.attempts));
            tracing::warn!(user_id = %m.user_id, attempts = m.attempts, error = %e, "mail delivery failed; retrying later");
            core.users.retry_mail(&m).await?;
            count("retried");
            Ok(false)
        }
        Err(e) => {
            tracing::error!(user_id = %m.user_id, attempts = m.attempts + 1, error = %e, "mail delivery given up");
            core.users.delete_mail(&m).await?;
            unvouch(core, m.user_id, m.id).await;
            count("dropped");
            Ok(false)
        }
    }
}

/// Removes `id` from the user's vouched outbox ids, in the user's partition
/// (every change of a user's record is serialized there). Best effort: a
/// left-over id names a message that no longer exists and is pruned by the
/// next flow that writes the record.
async fn unvouch(core: &Arc<Core>, user: UserId, id: [u8; 16]) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    core.dispatch(
        PartitionKey::User(user),
        Responder::new(move |r: Result<(), AuthError>| {
            let _ = tx.send(r);
        }),
        move |c| async move {
            for _ in 0..3 {
                let Some(current) = c
                    .user_op("get_user", c.users.get_user(user))
                    .await
                    .map_err(|e| AuthError::from_store("get_user", e))?
                else {
                    return Ok(());
                };
                if !current.account.outbox.contains(&id) {
                    return Ok(());
                }
                let mut updated = current.clone();
                updated.account.outbox.retain(|x| *x != id);
                match save_user(&c, &current, &mut updated, &[]).await {
                    Ok(_) => return Ok(()),
                    Err(portcullis_storage::StoreError::VersionConflict { .. }) => continue,
                    Err(e) => return Err(AuthError::from_store("update_user", e)),
                }
            }
            Ok(())
        },
    );
    if let Ok(Err(e)) = rx.await {
        tracing::debug!(error = %e, "removing a delivered message from its record failed; pruned later");
    }
}

#[cfg(test)]
mod tests;
