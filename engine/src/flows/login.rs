//! Password login: lockout and verification in the email partition, session
//! issue and hash upgrade in the user partition.

use std::sync::Arc;

use portcullis_storage::{StoreError, UserId};
use zeroize::Zeroizing;

use crate::command::{ClientInfo, Outcome, Reply};
use crate::core::Core;
use crate::domain::{Email, Password};
use crate::error::AuthError;
use crate::metrics as m;
use crate::shard::PartitionKey;

pub(crate) struct Login {
    pub email: Email,
    pub password: Password,
    pub client: ClientInfo,
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
    let now = core.now_ms();
    super::shared_rate_limit(core, "login", &req.client).await?;
    // The attempt counts as a failure before the password is checked, in
    // one atomic store operation, and a success clears it: attempts racing
    // on several pods cannot verify more passwords than the policy allows.
    // An attempt the hash pool then refuses (503 overloaded) stays counted:
    // counting is what bounds the guesses, so it cannot wait for the verify.
    let attempt = super::count_attempt(core, &key, now).await?;
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
    let password: Zeroizing<String> = req.password.into_secret();
    let verified = match &user {
        Some(u) => core.hash.verify(password, &u.password_hash).await?,
        None => core.hash.dummy_verify(password).await?,
    };
    let Some(user) = user.filter(|_| verified.ok) else {
        if attempt.locked_until_ms.is_some() {
            tracing::warn!(
                failures = attempt.failures,
                "login key locked after repeated failures"
            );
        }
        return Err(AuthError::InvalidCredentials);
    };
    super::clear_lockout(core, &key).await?;
    let core2 = core.clone();
    let client = req.client;
    let rehashed = verified.rehashed;
    core.call_in(PartitionKey::User(user.id), async move {
        if let Some(new_hash) = rehashed {
            upgrade_hash(&core2, user.id, new_hash).await;
        }
        if user.mfa_enabled {
            return super::mfa::begin(&core2, user.id).await;
        }
        super::open_session(&core2, user.id, &client, &["pwd"])
            .await
            .map(Outcome::Granted)
    })
    .await?
}

/// Replaces the stored hash after a successful login with outdated
/// parameters. Failure is logged, not fatal: the login itself succeeded.
async fn upgrade_hash(core: &Core, id: UserId, new_hash: String) {
    let current = match core.user_op("get_user", core.users.get_user(id)).await {
        Ok(Some(u)) => u,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not read user to upgrade its password hash");
            return;
        }
    };
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
