//! Password login: lockout and verification in the email partition, session
//! issue and hash upgrade in the user partition.

use std::sync::Arc;

use portcullis_storage::{StoreError, UserId};
use zeroize::Zeroizing;

use crate::command::{ClientInfo, Outcome, Reply};
use crate::core::Core;
use crate::domain::{Email, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::metrics as m;
use crate::shard::PartitionKey;

pub(crate) struct Login {
    pub email: Email,
    pub password: Password,
    pub device_token: Option<Zeroizing<String>>,
    pub client: ClientInfo,
    /// The hash-pool place taken before the login was admitted.
    pub slot: HashSlot,
}

/// Logins of one account admitted at once, per process: one verifying and
/// one waiting. More would only wait behind them in the account's
/// partition while holding places in the hash pool that other accounts'
/// logins could use; they are refused (429, not counted as attempts).
pub(crate) const LOGINS_PER_ACCOUNT: u32 = 2;

/// Counts of admitted logins per account (normalized email), bounded by
/// what is in flight: an entry lives while a login of it does.
pub(crate) struct PerAccount {
    hasher: std::hash::RandomState,
    shards: Vec<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

impl Default for PerAccount {
    fn default() -> Self {
        PerAccount {
            hasher: std::hash::RandomState::new(),
            shards: (0..16).map(|_| Default::default()).collect(),
        }
    }
}

impl PerAccount {
    /// Admits one more login of `key`, or `None` when [`LOGINS_PER_ACCOUNT`]
    /// are in flight.
    pub(crate) fn enter(self: &Arc<Self>, key: &str) -> Option<AccountSlot> {
        use std::hash::BuildHasher as _;
        let shard = (self.hasher.hash_one(key) as usize) % self.shards.len();
        let mut map = self.shards[shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(key.to_owned()).or_default();
        if *n >= LOGINS_PER_ACCOUNT {
            return None;
        }
        *n += 1;
        Some(AccountSlot {
            owner: self.clone(),
            shard,
            key: key.to_owned(),
        })
    }
}

/// One admitted login of an account; leaves on drop.
pub(crate) struct AccountSlot {
    owner: Arc<PerAccount>,
    shard: usize,
    key: String,
}

impl Drop for AccountSlot {
    fn drop(&mut self) {
        let mut map = self.owner.shards[self.shard]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// Counts a login in `portcullis_engine_logins_in_flight` while it lives.
pub(crate) struct InFlight(metrics::Gauge);

impl InFlight {
    pub(crate) fn enter() -> InFlight {
        let g = metrics::gauge!(m::LOGINS_IN_FLIGHT);
        g.increment(1.0);
        InFlight(g)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Runs in `Email(email)`, so attempts on one address are serialized and the
/// lockout counter cannot be raced past its limit within this process.
pub(crate) async fn run(core: Arc<Core>, req: Login) -> Reply {
    let result = login(&core, req).await;
    let label = match &result {
        Ok(Outcome::MfaRequired { .. }) => "mfa_required",
        Ok(_) => "ok",
        Err(AuthError::InvalidCredentials) => "invalid",
        Err(AuthError::TooManyAttempts { .. }) => "locked",
        Err(_) => "error",
    };
    metrics::counter!(m::LOGINS_TOTAL, "result" => label).increment(1);
    result
}

async fn login(core: &Arc<Core>, req: Login) -> Reply {
    let key = req.email.as_str().to_owned();
    super::shared_rate_limit(core, "login", &req.client).await?;
    // Unknown emails go through the same steps with a dummy hash, and lock
    // the same way, so neither timing nor answers reveal whether they exist.
    let user_id = core
        .user_op(
            "find_user_id_by_email",
            core.users.find_user_id_by_email(&key),
        )
        .await
        .map_err(|e| AuthError::from_store("find_user_id_by_email", e))?;
    let user = match user_id {
        Some(id) => core
            .user_op("get_user", core.users.get_user(id))
            .await
            .map_err(|e| AuthError::from_store("get_user", e))?
            // A shared store may still resolve an email the user has just
            // changed away from: only the record's own email logs in.
            .filter(|u| u.email == key),
        None => None,
    };
    // A device token counts only for the account it was issued to, under
    // its current credentials, until it expires.
    let now = core.now_ms();
    let device = match (&req.device_token, &user) {
        (Some(t), Some(u)) => core.token_svc.device_key()?.verify(t).filter(|d| {
            d.user_id == u.id && d.epoch == u.account.device_epoch && now < d.expires_at_ms
        }),
        _ => None,
    };
    // The attempt counts as a failure before the password is checked, in
    // one atomic store operation, and a success clears it: attempts racing
    // on several pods cannot verify more passwords than the policy allows.
    // The hash-pool place was taken before admission, so an attempt the
    // pool could not take never got here and never counts.
    let counters = super::guard_password(core, &key, &req.client, device.as_ref()).await?;
    let password: Zeroizing<String> = req.password.into_secret();
    let verified = match &user {
        Some(u) => req.slot.verify(password, &u.password_hash).await?,
        None => req.slot.dummy_verify(password).await?,
    };
    super::settle_password(core, &counters, verified.ok).await?;
    let Some(user) = user.filter(|_| verified.ok) else {
        return Err(AuthError::InvalidCredentials);
    };
    let core2 = core.clone();
    let client = req.client;
    let rehashed = verified.rehashed;
    // The credentials epoch the password was checked under: the session
    // (or the second step) opens only if it is still the account's once
    // written. Every password change, reset, MFA change and logout-all
    // moves it, so no second read is needed here.
    let epoch = user.account.credentials_epoch;
    let mfa = user.mfa_enabled;
    let device_epoch = user.account.device_epoch;
    let verified_hash = user.password_hash;
    let device_id = device.map(|d| d.device_id);
    core.call_in(PartitionKey::User(user.id), async move {
        if let Some(new_hash) = rehashed {
            upgrade_hash(&core2, user.id, &verified_hash, new_hash).await;
        }
        if mfa {
            return super::mfa::begin(&core2, user.id, epoch).await;
        }
        let mut grant =
            super::open_session(&core2, user.id, &client, &["pwd"], Some(epoch)).await?;
        grant.device_token = Some(issue_device_token(
            &core2,
            user.id,
            device_epoch,
            device_id,
        )?);
        Ok(Outcome::Granted(grant))
    })
    .await?
}

/// A device token for `user` under device `epoch`: the presented device's
/// id when it had a valid one (its counter carries on), else a new device.
pub(crate) fn issue_device_token(
    core: &Core,
    user: UserId,
    epoch: u64,
    device_id: Option<[u8; 16]>,
) -> Result<Zeroizing<String>, AuthError> {
    use ring::rand::SecureRandom as _;
    let device_id = match device_id {
        Some(id) => id,
        None => {
            let mut id = [0u8; 16];
            core.token_svc
                .rng()
                .fill(&mut id)
                .map_err(|_| AuthError::Internal("system random generator failed".into()))?;
            id
        }
    };
    let device = crate::tokens::device::Device {
        user_id: user,
        device_id,
        expires_at_ms: core
            .now_ms()
            .saturating_add(super::ms(core.cfg.device_token_ttl)),
        epoch,
    };
    Ok(core.token_svc.device_key()?.issue(&device))
}

/// Replaces the stored hash after a successful login with outdated
/// parameters, only if the stored hash is still `verified` (the one the
/// password was checked against): a rehash of an old password must never
/// undo a reset or change that happened meanwhile. Failure is logged, not
/// fatal: the login itself succeeded.
async fn upgrade_hash(core: &Core, id: UserId, verified: &str, new_hash: String) {
    let current = match core.user_op("get_user", core.users.get_user(id)).await {
        Ok(Some(u)) => u,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not read user to upgrade its password hash");
            return;
        }
    };
    if current.password_hash != verified {
        tracing::info!(user_id = %id, "password hash upgrade skipped: the password changed meanwhile");
        return;
    }
    let mut updated = current.clone();
    updated.password_hash = new_hash;
    updated.version = current.version + 1;
    updated.updated_at_ms = core.now_ms();
    match core
        .user_op(
            "update_user",
            core.users.update_user(&updated, current.version),
        )
        .await
    {
        Ok(()) => {
            core.read.put_user(&updated);
            tracing::info!(user_id = %id, "password hash upgraded to the configured scheme");
        }
        Err(StoreError::VersionConflict { .. }) => {
            tracing::info!(user_id = %id, "password hash upgrade skipped: user changed concurrently");
        }
        Err(e) => tracing::warn!(error = %e, "could not upgrade password hash"),
    }
}
