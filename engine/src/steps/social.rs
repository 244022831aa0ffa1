//! Social sign-in steps: the client's PKCE check, and the account an identity signs in to (found by (provider,
//! subject), linked on a verified email on both sides, or created).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_storage::{LinkedIdentity, StoreError, UserId, UserRecord};

use crate::core::Core;
use crate::error::AuthError;
use crate::social::Identity;

/// A claim older than this whose user's record does not list the identity
/// was left by an interrupted sign-up or link, and is released.
const STALE_CLAIM_MS: u64 = 60_000;
/// How long a sign-in waits for a concurrent first sign-in of the same
/// identity (another pod creating the account) to finish.
const CONCURRENT_WAIT: Duration = Duration::from_millis(100);
const CONCURRENT_TRIES: usize = 30;

/// SHA-256, base64url: a PKCE S256 challenge of `verifier`, or the stored
/// form of a cookie.
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        verifier.as_bytes(),
    ))
}

/// Whether `verifier` is a well-formed PKCE verifier (RFC 7636 4.1) whose
/// S256 challenge is `challenge`, compared in constant time.
pub(crate) fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let expected = s256(verifier);
    well_formed && subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), challenge.as_bytes()).into()
}

fn lists(user: &UserRecord, provider: &str, subject: &str) -> bool {
    user.account
        .identities
        .iter()
        .any(|i| i.provider == provider && i.subject == subject)
}

async fn get_user(core: &Core, id: UserId) -> Result<Option<UserRecord>, AuthError> {
    core.user_op("get_user", core.users.get_user(id))
        .await
        .map_err(|e| AuthError::from_store("get_user", e))
}

/// Who holds (provider, subject) now: `Some(user)` when the index names a
/// user whose record lists it; left-over claims are released.
async fn holder(
    core: &Core,
    provider: &str,
    identity: &Identity,
) -> Result<Option<UserRecord>, AuthError> {
    for _ in 0..CONCURRENT_TRIES {
        let claim = core
            .user_op(
                "find_identity",
                core.users.find_identity(provider, &identity.subject),
            )
            .await
            .map_err(|e| AuthError::from_store("find_identity", e))?;
        let Some(claim) = claim else {
            return Ok(None);
        };
        match get_user(core, claim.user_id).await? {
            Some(u) if lists(&u, provider, &identity.subject) => return Ok(Some(u)),
            _ if core.now_ms().saturating_sub(claim.claimed_at_ms) > STALE_CLAIM_MS => {
                tracing::warn!(user_id = %claim.user_id, provider, "released an identity claim left by an interrupted sign-up or link");
                core.user_op(
                    "release_identity",
                    core.users
                        .release_identity(provider, &identity.subject, claim.user_id),
                )
                .await
                .map_err(|e| AuthError::from_store("release_identity", e))?;
                return Ok(None);
            }
            // A sign-up or link of this identity is under way (maybe on
            // another pod): its record appears in a moment.
            _ => tokio::time::sleep(CONCURRENT_WAIT).await,
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

fn linked(provider: &str, identity: &Identity, now: u64) -> LinkedIdentity {
    LinkedIdentity {
        provider: provider.to_owned(),
        subject: identity.subject.clone(),
        email: identity.email.clone(),
        email_verified: identity.email_verified,
        linked_at_ms: now,
    }
}

/// Links the identity to `user` (claim, then the record). `Ok(false)` when
/// another user holds it.
async fn link(
    core: &Core,
    provider: &str,
    identity: &Identity,
    user: UserId,
) -> Result<bool, AuthError> {
    let now = core.now_ms();
    let claim = core
        .user_op(
            "claim_identity",
            core.users
                .claim_identity(provider, &identity.subject, user, now),
        )
        .await
        .map_err(|e| AuthError::from_store("claim_identity", e))?;
    if claim.user_id != user {
        return Ok(false);
    }
    for _ in 0..3 {
        let Some(current) = get_user(core, user).await? else {
            return Err(AuthError::NotFound);
        };
        if lists(&current, provider, &identity.subject) {
            return Ok(true);
        }
        // Another account of this provider stays until its owner unlinks
        // it: a link never silently replaces one.
        if current
            .account
            .identities
            .iter()
            .any(|i| i.provider == provider)
        {
            release_claim(core, provider, identity, user).await;
            return Err(AuthError::IdentityExists);
        }
        let mut updated = current.clone();
        updated
            .account
            .identities
            .push(linked(provider, identity, now));
        let letter = crate::mail::letters::identity_linked(&current.email, provider);
        let mail = crate::steps::outbox::notice(core, "notice_link", &mut updated, &letter).await?;
        match crate::steps::record::save_user(core, &current, &mut updated, &mail).await {
            Ok(_) => {
                tracing::info!(user_id = %user, provider, "identity linked");
                return Ok(true);
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(e) => return Err(AuthError::from_store("update_user", e)),
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}

/// Gives back a claim this flow made and will not use.
async fn release_claim(core: &Core, provider: &str, identity: &Identity, user: UserId) {
    if let Err(e) = core
        .users
        .release_identity(provider, &identity.subject, user)
        .await
    {
        tracing::warn!(user_id = %user, error = %e, "releasing an unused identity claim failed; it is released when found stale");
    }
}

/// The account `identity` signs in to, and whether it was created now.
///
/// - (provider, subject) linked already: that account.
/// - `link_user` (a signed-in user's link): linked to it, unless another
///   account holds the identity (`account_exists`).
/// - An account with the provider's email: linked only when the provider
///   asserts the email verified **and** the account's email is verified;
///   otherwise `account_exists` (never link on an unverified email).
/// - Otherwise a new account without a password.
pub(crate) async fn resolve(
    core: &Arc<Core>,
    provider: &str,
    identity: &Identity,
    link_user: Option<UserId>,
) -> Result<(UserRecord, bool), AuthError> {
    for _ in 0..3 {
        if let Some(u) = holder(core, provider, identity).await? {
            return match link_user {
                Some(l) if l != u.id => Err(AuthError::AccountExists),
                _ => Ok((u, false)),
            };
        }
        if let Some(l) = link_user {
            if !link(core, provider, identity, l).await? {
                continue;
            }
            let u = get_user(core, l).await?.ok_or(AuthError::NotFound)?;
            return Ok((u, false));
        }
        let email = identity
            .email
            .as_deref()
            .and_then(|e| crate::domain::Email::parse("email", e).ok())
            .ok_or(AuthError::EmailRequired)?;
        let existing = core
            .user_op(
                "find_user_id_by_email",
                core.users.find_user_id_by_email(email.as_str()),
            )
            .await
            .map_err(|e| AuthError::from_store("find_user_id_by_email", e))?;
        let existing = match existing {
            Some(id) => get_user(core, id)
                .await?
                .filter(|u| u.email == email.as_str()),
            None => None,
        };
        if let Some(u) = existing {
            // Linked on the email only when both sides verified it, and the
            // account carries no identity linked on an unverified email
            // (whoever made the account that way may not be its owner).
            let unverified_link = u.account.identities.iter().any(|i| !i.email_verified);
            if !(identity.email_verified && u.email_verified) || unverified_link {
                return Err(AuthError::AccountExists);
            }
            if !link(core, provider, identity, u.id).await? {
                continue;
            }
            let u = get_user(core, u.id).await?.ok_or(AuthError::NotFound)?;
            return Ok((u, false));
        }
        // A new account: the identity is claimed for its id first, so a
        // concurrent first sign-in of the same identity waits for this
        // record instead of creating a second account.
        let now = core.now_ms();
        let id = crate::steps::record::new_user_id(now);
        let claim = core
            .user_op(
                "claim_identity",
                core.users
                    .claim_identity(provider, &identity.subject, id, now),
            )
            .await
            .map_err(|e| AuthError::from_store("claim_identity", e))?;
        if claim.user_id != id {
            continue;
        }
        let user = UserRecord {
            id,
            email: email.as_str().to_owned(),
            password_hash: String::new(),
            // The provider's name, if it is one we would accept ourselves.
            name: identity
                .name
                .as_deref()
                .and_then(|n| crate::domain::parse_name("name", n).ok()),
            picture_url: None,
            email_verified: identity.email_verified,
            mfa_enabled: false,
            created_at_ms: now,
            updated_at_ms: now,
            version: 1,
            account: portcullis_storage::AccountState {
                identities: vec![linked(provider, identity, now)],
                ..Default::default()
            },
        };
        match core
            .user_op("create_user", core.users.create_user(&user))
            .await
        {
            Ok(()) => {
                tracing::info!(user_id = %id, provider, "user registered by social sign-in");
                return Ok((user, true));
            }
            Err(e) => {
                release_claim(core, provider, identity, id).await;
                match e {
                    // Registered meanwhile: decide again with that account.
                    StoreError::EmailTaken => continue,
                    other => return Err(AuthError::from_store("create_user", other)),
                }
            }
        }
    }
    Err(AuthError::Unavailable {
        retry_after_secs: 1,
    })
}
