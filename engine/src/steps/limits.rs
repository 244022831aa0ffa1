//! Rate limits of the flows, shared by every pod through the token store:
//! per client address and per account.

use portcullis_storage::UserId;

use crate::core::Core;
use crate::error::AuthError;
use crate::model::ClientInfo;

/// Admits the request under the per-address limit shared by every pod
/// (a Redis Cluster token store), after the edge's in-process limiter.
/// Does nothing with a local store or without a client address.
pub(crate) async fn shared_rate_limit(
    core: &Core,
    route: &'static str,
    client: &ClientInfo,
) -> Result<(), AuthError> {
    let (Some(limit), Some(ip)) = (core.cfg.shared_rate_limit, client.ip) else {
        return Ok(());
    };
    if core.tokens.is_local_authority() {
        return Ok(());
    }
    let key = format!("{route}:{}", crate::domain::rate_limit_key(ip));
    let wait = core
        .token_op(
            "rate_limit",
            core.tokens.rate_limit(&key, core.now_ms(), &limit),
        )
        .await
        .map_err(|e| AuthError::from_store("rate_limit", e))?;
    match wait {
        None => Ok(()),
        Some(ms) => {
            metrics::counter!(crate::metrics::SHARED_RATE_LIMITED_TOTAL, "route" => route)
                .increment(1);
            Err(AuthError::RateLimited {
                retry_after_secs: ms.div_ceil(1000).max(1),
            })
        }
    }
}

/// Admits one more request of `route` for `user` under `limit` (none: no
/// limit), across every pod; 429 `too_many_requests` otherwise.
pub(crate) async fn account_limit(
    core: &Core,
    route: &'static str,
    user: UserId,
    limit: Option<portcullis_storage::RateLimit>,
) -> Result<(), AuthError> {
    match limit {
        Some(l) => limited(core, &format!("acct:{route}:{user}"), &l).await,
        None => Ok(()),
    }
}

pub(crate) async fn limited(
    core: &Core,
    key: &str,
    limit: &portcullis_storage::RateLimit,
) -> Result<(), AuthError> {
    let wait = core
        .token_op(
            "rate_limit",
            core.tokens.rate_limit(key, core.now_ms(), limit),
        )
        .await
        .map_err(|e| AuthError::from_store("rate_limit", e))?;
    match wait {
        None => Ok(()),
        Some(ms) => {
            metrics::counter!(crate::metrics::ACCOUNT_RATE_LIMITED_TOTAL).increment(1);
            Err(AuthError::TooManyRequests {
                retry_after_secs: ms.div_ceil(1000).max(1),
            })
        }
    }
}
