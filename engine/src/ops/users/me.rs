//! [`Me`]: the bearer's profile. Answered from the read model on the
//! calling thread when it knows the session and the user; otherwise in the
//! user's partition, from the store.

use std::sync::Arc;

use crate::core::{Core, Engine};
use crate::error::{AuthError, TokenProblem};
use crate::model::{Bearer, UserView};
use crate::ops::Operation;
use crate::readmodel::Known;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::steps::access::with_access;
use crate::steps::record::load_user;
use crate::steps::sessions::authorize;
use crate::tokens::VerifiedAccess;

/// The bearer's profile.
pub struct Me {
    /// Access token.
    pub bearer: Bearer,
}

impl Operation for Me {
    type Reply = Arc<UserView>;

    fn submit(self, engine: &Engine, reply: Responder<Arc<UserView>>) {
        with_access(&engine.core, self.bearer, reply, |core, access, reply| {
            let now = core.now_ms();
            let known = core.read.session(access.user_id, access.session_id, now);
            let cached = match known {
                Known::Live => core.read.user(access.user_id),
                _ => None,
            };
            match (known, cached) {
                (_, Some(user)) => reply.send(Ok(user)),
                (Known::Revoked, None) => {
                    reply.send(Err(AuthError::Unauthenticated(TokenProblem::Revoked)))
                }
                _ => core.dispatch(PartitionKey::User(access.user_id), reply, move |c| {
                    run(c, access)
                }),
            }
        });
    }
}

/// The token's user, read from the store (the slow path).
async fn run(core: Arc<Core>, access: VerifiedAccess) -> Reply<Arc<UserView>> {
    authorize(&core, &access).await?;
    let user = load_user(&core, access.user_id).await?;
    Ok(core.read.put_user(&user))
}
