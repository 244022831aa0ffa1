//! Signing keys: loaded from the token store (or an operator's directory),
//! rotated on schedule, reloaded on demand when another pod made a new one.

use std::time::Duration;

use crate::core::Core;
use crate::tokens::keys::{self, KeyChange, KeyRing, RotationPolicy};

/// The start-up steps that need the token store: signing keys, and the
/// refresh-token chain key (the first process stores it, every other reads it).
pub(crate) async fn start_up(core: &Core) -> Result<(), String> {
    maintain_keys(core).await?;
    let candidate = crate::tokens::refresh::first_secret(core.token_svc.rng())
        .map_err(|_| "system random generator failed".to_owned())?;
    let chain_key = core
        .tokens
        .refresh_chain_key(*candidate)
        .await
        .map_err(|e| format!("refresh-token chain key: {e}"))?;
    core.token_svc.set_chain_key(&chain_key);
    Ok(())
}

/// Reloads the key ring from the store as it is (keys other pods created).
pub(crate) async fn reload_keys(core: &Core) -> Result<(), String> {
    if core.cfg.signing_keys_dir.is_some() {
        return maintain_keys(core).await;
    }
    let records = core
        .tokens
        .load_signing_keys()
        .await
        .map_err(|e| e.to_string())?;
    install_keys(core, records, core.now_ms())
}

/// Loads `records` into the token service, if one of them can sign at `now`.
fn install_keys(
    core: &Core,
    records: Vec<portcullis_storage::SigningKeyRecord>,
    now: u64,
) -> Result<(), String> {
    let ring = KeyRing::load(records, now);
    if ring.signer(now).is_none() {
        return Err("no usable signing key".into());
    }
    core.token_svc.set_keys(ring);
    Ok(())
}

/// Brings the stored keys in line with the rotation schedule and reloads the ring.
pub(crate) async fn maintain_keys(core: &Core) -> Result<(), String> {
    let now = core.now_ms();
    if let Some(dir) = core.cfg.signing_keys_dir.clone() {
        // Managed by the operator: read, never generate, rotate or store.
        let records = tokio::task::spawn_blocking(move || keys::load_dir(&dir, now))
            .await
            .map_err(|e| format!("reading the signing keys directory failed: {e}"))??;
        return install_keys(core, records, now);
    }
    let policy = RotationPolicy {
        interval: core.cfg.key_rotation_interval,
        publish_lead: core.cfg.key_publish_lead,
        retire_after: core.cfg.access_ttl + Duration::from_secs(300),
    };
    let mut records = core
        .tokens
        .load_signing_keys()
        .await
        .map_err(|e| e.to_string())?;
    let changes = keys::plan(&records, now, &policy, core.token_svc.rng())
        .map_err(|_| "key generation failed".to_owned())?;
    for change in changes {
        match change {
            KeyChange::Save(k) => {
                tracing::info!(kid = %k.kid, not_before_ms = k.not_before_ms, expires_at_ms = ?k.expires_at_ms, "saving signing key");
                core.tokens
                    .save_signing_key(&k)
                    .await
                    .map_err(|e| e.to_string())?;
                records.retain(|r| r.kid != k.kid);
                records.push(k);
            }
            KeyChange::Delete(kid) => {
                tracing::info!(kid = %kid, "deleting retired signing key");
                core.tokens
                    .delete_signing_key(&kid)
                    .await
                    .map_err(|e| e.to_string())?;
                records.retain(|r| r.kid != kid);
            }
        }
    }
    install_keys(core, records, now)
}
