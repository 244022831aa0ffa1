//! Bearer access tokens: verify one, then run the operation in its user's
//! partition. A token signed by a key this process has not loaded yet
//! (another pod created it moments ago, with a shared token store) triggers
//! one reload of the keys, at most once a second, and a second verification.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::core::Core;
use crate::error::{AuthError, TokenProblem};
use crate::metrics as m;
use crate::model::Bearer;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::tokens::VerifiedAccess;
use crate::tokens::onetime::{self, Presented, Purpose};

/// How recent a sign-in stands in for the password where a credential
/// changes without it (an account that has none; a passkey session adding
/// a passkey).
pub(crate) const FRESH_SIGN_IN: std::time::Duration = std::time::Duration::from_secs(600);

/// Whether the bearer's session signed in within [`FRESH_SIGN_IN`] (its
/// `auth_time`, which refreshes keep).
pub(crate) fn signed_in_recently(core: &Core, access: &VerifiedAccess) -> bool {
    access
        .claims
        .auth_time
        .is_some_and(|t| core.now_ms() / 1000 <= t.saturating_add(FRESH_SIGN_IN.as_secs()))
}

/// The error for a bearer token that did not verify: with no signing key
/// loaded yet (the token store has not answered since start-up) nothing can
/// be told about it, so 503, not a 401 that would sign a client out.
pub(crate) fn unverified(core: &Core, problem: TokenProblem) -> AuthError {
    if problem == TokenProblem::Invalid && !core.token_svc.has_keys() {
        AuthError::Unavailable {
            retry_after_secs: 1,
        }
    } else {
        AuthError::Unauthenticated(problem)
    }
}

fn verify(core: &Core, bearer: Option<&str>) -> Result<VerifiedAccess, AuthError> {
    let token = bearer.ok_or(AuthError::Unauthenticated(TokenProblem::Missing))?;
    core.token_svc
        .verify_access(token, core.now_ms())
        .map_err(|p| unverified(core, p))
}

/// Verifies the bearer token, then runs `flow` with it in its user's
/// partition.
pub(crate) fn authed<T, F, Fut>(core: &Arc<Core>, bearer: Bearer, reply: Responder<T>, flow: F)
where
    T: Send + 'static,
    F: FnOnce(Arc<Core>, VerifiedAccess) -> Fut + Send + 'static,
    Fut: Future<Output = Reply<T>> + Send + 'static,
{
    with_access(core, bearer, reply, move |core, access, reply| {
        core.dispatch(PartitionKey::User(access.user_id), reply, move |c| {
            flow(c, access)
        });
    });
}

/// Verifies the bearer token, then hands it to `then` (reloading the keys
/// once when it names a key not loaded yet).
pub(crate) fn with_access<T, F>(core: &Arc<Core>, bearer: Bearer, reply: Responder<T>, then: F)
where
    T: Send + 'static,
    F: FnOnce(&Arc<Core>, VerifiedAccess, Responder<T>) + Send + 'static,
{
    match verify(core, bearer.as_deref()) {
        Ok(access) => then(core, access, reply),
        Err(AuthError::Unauthenticated(TokenProblem::Invalid))
            if !core.tokens.is_local_authority()
                && bearer
                    .as_deref()
                    .is_some_and(|t| core.token_svc.names_unknown_key(t))
                && claim_key_reload(core) =>
        {
            let core = core.clone();
            core.handle.clone().spawn(async move {
                metrics::counter!(m::KEY_RELOADS_TOTAL).increment(1);
                if let Err(e) = crate::signing::reload_keys(&core).await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
                match verify(&core, bearer.as_deref()) {
                    Ok(access) => then(&core, access, reply),
                    Err(e) => reply.send(Err(e)),
                }
            });
        }
        Err(e) => reply.send(Err(e)),
    }
}

/// Whether this caller may reload the keys now (at most once a second).
fn claim_key_reload(core: &Core) -> bool {
    let now = core.now_ms();
    let last = core.key_reload_at.load(Ordering::Relaxed);
    now.saturating_sub(last) >= 1000
        && core
            .key_reload_at
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
}

/// Runs `flow` in the partition of the user that a single-use `token` of
/// `purpose` names, or answers `refused` at once when the token is not one
/// (nothing is read for a malformed token).
pub(crate) fn with_onetime<T, F, Fut>(
    core: &Arc<Core>,
    purpose: Purpose,
    token: &str,
    refused: AuthError,
    reply: Responder<T>,
    flow: F,
) where
    T: Send + 'static,
    F: FnOnce(Arc<Core>, Presented) -> Fut + Send + 'static,
    Fut: Future<Output = Reply<T>> + Send + 'static,
{
    match onetime::parse(purpose, token) {
        Some(t) => core.dispatch(PartitionKey::User(t.user_id), reply, move |c| flow(c, t)),
        None => reply.send(Err(refused)),
    }
}
