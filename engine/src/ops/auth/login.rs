//! [`Login`]: password sign-in. Lockout and verification run in the email's
//! partition; the session and the hash upgrade in the user's.

use std::sync::Arc;

use portcullis_storage::{StoreError, UserId};
use zeroize::Zeroizing;

use crate::core::{Core, Engine};
use crate::domain::{Email, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::metrics as m;
use crate::model::{ClientInfo, MfaRequired, TokenGrant};
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::limits::shared_rate_limit;
use crate::steps::lockout::{guard_password, settle_password};
use crate::steps::record::save_user;
use crate::steps::signin::{issue_device_token, open_session};
use crate::steps::totp::{FirstFactor, begin};

/// Sign in with email and password.
pub struct Login {
    /// Login email.
    pub email: Email,
    /// Password.
    pub password: Password,
    /// The device token a previous login of this client returned.
    pub device_token: Option<Zeroizing<String>>,
    /// Caller.
    pub client: ClientInfo,
}

/// A login's answer.
#[derive(Debug, Clone)]
pub enum LoginReply {
    /// Signed in.
    Granted(TokenGrant),
    /// The password was right; the login needs its second factor.
    MfaRequired(MfaRequired),
}

impl Operation for Login {
    type Reply = LoginReply;

    fn submit(self, engine: &Engine, reply: Responder<LoginReply>) {
        let core = &engine.core;
        // At most two logins of one account at once: more would wait
        // in its partition holding hash-pool places.
        let Some(account_slot) = core.logins.enter(self.email.as_str()) else {
            metrics::counter!(m::LOGINS_TOTAL, "result" => "throttled").increment(1);
            reply.send(Err(AuthError::TooManyRequests {
                retry_after_secs: 1,
            }));
            return;
        };
        // The hash-pool place first: a login the pool cannot take is
        // refused now, in microseconds, before it waits for its
        // partition or counts as an attempt.
        let Some((slot, reply)) = core.reserve_hash(reply) else {
            metrics::counter!(m::LOGINS_TOTAL, "result" => "overloaded").increment(1);
            return;
        };
        let key = PartitionKey::Email(self.email.as_str().to_owned());
        // Counted from admission to answer; a refused or abandoned
        // login drops the guard with the closure.
        let in_flight = crate::admission::InFlight::enter();
        core.dispatch(key, reply, move |c| async move {
            let _in_flight = in_flight;
            let _account_slot = account_slot;
            run(c, self, slot).await
        });
    }
}

/// Runs in `Email(email)`, so attempts on one address are serialized and the
/// lockout counter cannot be raced past its limit within this process.
async fn run(core: Arc<Core>, req: Login, slot: HashSlot) -> Reply<LoginReply> {
    let result = login(&core, req, slot).await;
    let label = match &result {
        Ok(LoginReply::MfaRequired(_)) => "mfa_required",
        Ok(_) => "ok",
        Err(AuthError::InvalidCredentials) => "invalid",
        Err(AuthError::TooManyAttempts { .. }) => "locked",
        Err(_) => "error",
    };
    metrics::counter!(m::LOGINS_TOTAL, "result" => label).increment(1);
    result
}

async fn login(core: &Arc<Core>, req: Login, slot: HashSlot) -> Reply<LoginReply> {
    let key = req.email.as_str().to_owned();
    shared_rate_limit(core, "login", &req.client).await?;
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
    let counters = guard_password(core, &key, &req.client, device.as_ref()).await?;
    let password: Zeroizing<String> = req.password.into_secret();
    let verified = match &user {
        Some(u) => slot.verify(password, &u.password_hash).await?,
        None => slot.dummy_verify(password).await?,
    };
    settle_password(core, &counters, verified.ok).await?;
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
            return begin(&core2, user.id, epoch, FirstFactor::Password)
                .await
                .map(LoginReply::MfaRequired);
        }
        let mut grant = open_session(&core2, user.id, &client, &["pwd"], Some(epoch)).await?;
        grant.device_token = Some(issue_device_token(
            &core2,
            user.id,
            device_epoch,
            device_id,
        )?);
        Ok(LoginReply::Granted(grant))
    })
    .await?
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
    match save_user(core, &current, &mut updated, &[]).await {
        Ok(_) => {
            tracing::info!(user_id = %id, "password hash upgraded to the configured scheme");
        }
        Err(StoreError::VersionConflict { .. }) => {
            tracing::info!(user_id = %id, "password hash upgrade skipped: user changed concurrently");
        }
        Err(e) => tracing::warn!(error = %e, "could not upgrade password hash"),
    }
}
