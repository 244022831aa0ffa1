//! RFC 7662 introspection and RFC 7009 revocation of either kind of token.
//! Both run in the token's user's partition.

mod introspect;
mod revoke;

pub use introspect::Introspect;
pub use revoke::Revoke;

use portcullis_storage::SessionRecord;

use crate::core::Core;
use crate::error::AuthError;
use crate::steps::limits::account_limit;
use crate::tokens::refresh::ParsedRefresh;

/// The session whose current refresh token `token` is, if any: one hash
/// and one comparison, however many rotations behind the token is (so an
/// old token costs no walk along its chain).
pub(crate) async fn current_session(
    core: &Core,
    token: &ParsedRefresh,
) -> Result<Option<SessionRecord>, AuthError> {
    let now = core.now_ms();
    let session = core
        .token_op(
            "get_session",
            core.tokens
                .get_session(token.user_id, token.session_id, now),
        )
        .await
        .map_err(|e| AuthError::from_store("get_session", e))?;
    let current = session.filter(|s| {
        s.generation == token.generation
            && bool::from(subtle::ConstantTimeEq::ct_eq(
                &token.hash()[..],
                &s.refresh_hash[..],
            ))
    });
    // Charged to the account only for its own, current token: a made-up
    // token naming someone's user id spends only its sender's per-address
    // budget, never the owner's.
    if current.is_some() {
        account_limit(
            core,
            "introspection",
            token.user_id,
            core.cfg.introspection_rate_limit,
        )
        .await?;
    }
    Ok(current)
}
