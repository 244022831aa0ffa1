//! The data-key re-sealing pass: visits every user and re-seals secrets
//! still under an older data key, so that old keys can be retired.

use std::sync::Arc;

use crate::core::Core;
use crate::error::AuthError;

pub(super) async fn run(core: Arc<Core>) {
    if let Err(e) = reseal_pass(&core).await {
        tracing::warn!(error = %e, "data-key re-sealing pass failed; retried later");
    }
}

/// Users read per page of the re-sealing pass.
const RESEAL_PAGE: usize = 256;

/// The background re-sealing pass: visits every user and, in each user's
/// partition, re-seals secrets still under an older data key, so that old
/// keys can be retired. Sets the gauge of records still under old keys
/// (0 once every secret is under the newest key). Returns that count.
pub(crate) async fn reseal_pass(core: &Arc<Core>) -> Result<u64, AuthError> {
    // With one key nothing can be under an older one (recovery codes from
    // before they were sealed are sealed when their record is next written,
    // or by the pass once a second key is configured): no scan.
    if core.mailer.keys.count() < 2 {
        metrics::gauge!(crate::metrics::DATAKEY_OLD_RECORDS).set(0.0);
        return Ok(0);
    }
    let mut after = None;
    let mut left = 0u64;
    let mut resealed = 0u64;
    loop {
        let page = core
            .user_op("scan_users", core.users.scan_users(after, RESEAL_PAGE))
            .await
            .map_err(|e| AuthError::from_store("scan_users", e))?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for u in page.iter().filter(|u| has_stale_secret(core, u)) {
            let c = core.clone();
            let id = u.id;
            let done = core
                .call_in(crate::shard::PartitionKey::User(id), async move {
                    let current = crate::steps::record::load_user(&c, id).await?;
                    if !has_stale_secret(&c, &current) {
                        return Ok(false);
                    }
                    let mut updated = current.clone();
                    crate::steps::record::save_user(&c, &current, &mut updated, &[])
                        .await
                        .map_err(|e| AuthError::from_store("update_user", e))?;
                    Ok::<bool, AuthError>(!has_stale_secret(&c, &updated))
                })
                .await;
            match done {
                Ok(Ok(true)) => {
                    resealed += 1;
                    metrics::counter!(crate::metrics::DATAKEY_RESEALED_TOTAL).increment(1);
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) | Err(e) => {
                    left += 1;
                    tracing::warn!(user_id = %id, error = %e, "re-sealing a user's secrets failed; retried at the next pass");
                }
            }
        }
    }
    metrics::gauge!(crate::metrics::DATAKEY_OLD_RECORDS).set(left as f64);
    if resealed > 0 || left > 0 {
        tracing::info!(resealed, left, "data-key re-sealing pass done");
    }
    Ok(left)
}

/// Whether the record holds a secret sealed under an older data key.
pub(crate) fn has_stale_secret(core: &Core, user: &portcullis_storage::UserRecord) -> bool {
    let keys = &core.mailer.keys;
    user.account.totp.as_ref().is_some_and(|t| {
        keys.is_stale(&t.secret_sealed)
            || (!t.recovery_sealed.is_empty() && keys.is_stale(&t.recovery_sealed))
            || (!t.recovery_hashes.is_empty() && t.recovery_sealed.is_empty())
    }) || user
        .account
        .passkeys
        .iter()
        .any(|p| keys.is_stale(&p.sealed))
}
