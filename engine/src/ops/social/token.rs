//! [`SocialToken`]: the client app exchanges the one-time code from the
//! callback, proving with its PKCE verifier that it started the flow.

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{SocialReply, sign_in};
use crate::core::{Core, Engine};
use crate::error::AuthError;
use crate::model::ClientInfo;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::shard::PartitionKey;
use crate::social::flow::CodeGrant;
use crate::steps::social::pkce_matches;
use crate::steps::stash::take;

/// Exchange the one-time code for a session.
pub struct SocialToken {
    /// The code from the callback.
    pub code: Zeroizing<String>,
    /// The client's PKCE verifier.
    pub code_verifier: Zeroizing<String>,
    /// Caller.
    pub client: ClientInfo,
}

impl Operation for SocialToken {
    type Reply = SocialReply;

    fn submit(self, engine: &Engine, reply: Responder<SocialReply>) {
        let key = PartitionKey::Email(format!(
            "oauth-code:{}",
            crate::steps::social::s256(&self.code)
        ));
        engine.core.dispatch(key, reply, move |c| run(c, self));
    }
}

async fn run(core: Arc<Core>, req: SocialToken) -> Reply<SocialReply> {
    crate::steps::limits::shared_rate_limit(&core, "social", &req.client).await?;
    // Taken before the verifier is checked: a wrong guess burns the code.
    let grant: CodeGrant = take(&core, "social-code", &req.code)
        .await?
        .ok_or(AuthError::InvalidGrant)?;
    if !pkce_matches(&req.code_verifier, &grant.code_challenge) {
        tracing::warn!(provider = %grant.provider, "social code presented with a wrong code_verifier");
        super::count(&grant.provider, &Err(AuthError::InvalidGrant));
        return Err(AuthError::InvalidGrant);
    }
    let link_user = match &grant.link_user {
        Some(u) => Some(
            portcullis_storage::UserId::parse(u)
                .ok_or_else(|| AuthError::Internal("bad user id in a link".into()))?,
        ),
        None => None,
    };
    sign_in(&core, grant.provider, grant.identity, link_user, req.client).await
}
