//! The bearer's linked identities: list them, unlink one (never the last
//! way to sign in), and start a link (a short-lived, single-use link token
//! bound to the client's PKCE challenge).

use std::sync::Arc;

use portcullis_storage::StoreError;

use super::LINK_TTL;
use crate::core::{Core, Engine};
use crate::domain::{FieldError, Password};
use crate::error::AuthError;
use crate::hashpool::HashSlot;
use crate::model::Bearer;
use crate::ops::Operation;
use crate::responder::{Reply, Responder};
use crate::social::flow::LinkGrant;
use crate::steps::access::{authed, signed_in_recently};
use crate::steps::lockout::reverify_password;
use crate::steps::outbox::notice;
use crate::steps::record::{load_user, save_user};
use crate::steps::sessions::authorize;
use crate::steps::stash::{random_secret, stash};
use crate::tokens::VerifiedAccess;

/// One linked identity as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityView {
    /// The provider's name.
    pub provider: String,
    /// The provider's subject id.
    pub subject: String,
    /// The email the provider gave when linked.
    pub email: Option<String>,
    /// RFC 3339 time of the link.
    pub linked_at: String,
}

/// The bearer's identities.
pub struct ListIdentities {
    /// Access token.
    pub bearer: Bearer,
}

impl Operation for ListIdentities {
    type Reply = Vec<IdentityView>;

    fn submit(self, engine: &Engine, reply: Responder<Vec<IdentityView>>) {
        authed(&engine.core, self.bearer, reply, list);
    }
}

async fn list(core: Arc<Core>, access: VerifiedAccess) -> Reply<Vec<IdentityView>> {
    authorize(&core, &access).await?;
    let user = load_user(&core, access.user_id).await?;
    Ok(user
        .account
        .identities
        .iter()
        .map(|i| IdentityView {
            provider: i.provider.clone(),
            subject: i.subject.clone(),
            email: i.email.clone(),
            linked_at: crate::views::rfc3339(i.linked_at_ms),
        })
        .collect())
}

/// Unlink the bearer's identity at a provider.
pub struct Unlink {
    /// Access token.
    pub bearer: Bearer,
    /// The provider's name.
    pub provider: String,
}

impl Operation for Unlink {
    type Reply = ();

    fn submit(self, engine: &Engine, reply: Responder<()>) {
        let provider = self.provider;
        authed(&engine.core, self.bearer, reply, move |c, a| {
            unlink(c, a, provider)
        });
    }
}

async fn unlink(core: Arc<Core>, access: VerifiedAccess, provider: String) -> Reply<()> {
    authorize(&core, &access).await?;
    for _ in 0..3 {
        let current = load_user(&core, access.user_id).await?;
        let Some(gone) = current
            .account
            .identities
            .iter()
            .find(|i| i.provider == provider)
            .cloned()
        else {
            return Err(AuthError::NotFound);
        };
        if !crate::steps::passkeys::keeps_a_way_in(&current, None, Some(&provider)) {
            return Err(AuthError::LastSignInMethod);
        }
        let mut updated = current.clone();
        updated
            .account
            .identities
            .retain(|i| i.provider != provider);
        let letter = crate::mail::letters::identity_unlinked(&current.email, &provider);
        let mail = notice(&core, "notice_unlink", &mut updated, &letter).await?;
        match save_user(&core, &current, &mut updated, &mail).await {
            Ok(_) => {}
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
        // The record no longer lists it; a failed release is a left-over
        // the next sign-in of that identity releases.
        if let Err(e) = core
            .users
            .release_identity(&gone.provider, &gone.subject, current.id)
            .await
        {
            tracing::warn!(user_id = %current.id, error = %e, "identity unlinked; releasing its index entry failed");
        }
        tracing::info!(user_id = %current.id, provider = %gone.provider, "identity unlinked");
        return Ok(());
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

/// A link token: hand it to `/v1/oauth/{provider}/authorize` with the
/// same `code_challenge` within its lifetime.
#[derive(Debug, Clone)]
pub struct LinkToken {
    /// The token (single use).
    pub link_token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

/// Start linking a provider to the bearer's account: only an account whose
/// email is verified, and only with a fresh proof of who is there (the
/// password, or for an account without one a sign-in of the last ten
/// minutes): a stolen access token alone links nothing.
pub struct StartLink {
    /// Access token.
    pub bearer: Bearer,
    /// The PKCE challenge (S256) the link will be finished with.
    pub code_challenge: String,
    /// The current password (required when the account has one).
    pub password: Option<Password>,
}

impl Operation for StartLink {
    type Reply = LinkToken;

    fn submit(self, engine: &Engine, reply: Responder<LinkToken>) {
        let Some((slot, reply)) = engine.core.reserve_hash(reply) else {
            return;
        };
        let StartLink {
            bearer,
            code_challenge,
            password,
        } = self;
        authed(&engine.core, bearer, reply, move |c, a| {
            start_link(c, a, code_challenge, password, slot)
        });
    }
}

async fn start_link(
    core: Arc<Core>,
    access: VerifiedAccess,
    code_challenge: String,
    password: Option<Password>,
    slot: HashSlot,
) -> Reply<LinkToken> {
    authorize(&core, &access).await?;
    if code_challenge.len() != 43
        || !code_challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(AuthError::InvalidRequest(vec![FieldError::new(
            "code_challenge",
            "must be the base64url SHA-256 of the code verifier (43 characters)",
        )]));
    }
    let user = load_user(&core, access.user_id).await?;
    // Whoever registered an address they do not own cannot attach their
    // own provider account to it before the owner proves the mailbox.
    if !user.email_verified {
        return Err(AuthError::EmailNotVerified);
    }
    if user.password_hash.is_empty() {
        if !signed_in_recently(&core, &access) {
            return Err(AuthError::ReauthenticationRequired);
        }
    } else {
        let Some(password) = password else {
            return Err(AuthError::InvalidRequest(vec![FieldError::new(
                "password",
                "is required: the account's current password",
            )]));
        };
        reverify_password(&core, &user, password, access.session_id, slot).await?;
    }
    let token = random_secret(&core)?;
    let grant = LinkGrant {
        user_id: access.user_id.to_uuid_string(),
        code_challenge,
    };
    stash(&core, "social-link", &token, &grant, LINK_TTL).await?;
    Ok(LinkToken {
        link_token: token,
        expires_in: LINK_TTL.as_secs(),
    })
}
