//! The email index (`users_by_email`): lookups, claims and reservations,
//! the four steps of an email change, and the release of entries an
//! interrupted change left behind.

use uuid::Uuid;

use super::ScyllaUserStore;
use super::lwt::LwtError;
use super::prepared::Stmt;
use super::row::{self, to_bigint, uuid};
use crate::model::UserRecord;
use crate::{StoreError, StoreResult};

/// What a lookup of an email found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EmailEntry {
    /// Nothing.
    Free,
    /// The user's email.
    Claimed(Uuid),
    /// Reserved for an email change of this user, not yet final.
    Reserved(Uuid),
}

impl ScyllaUserStore {
    pub(super) async fn change_row_email(
        &self,
        user: &UserRecord,
        expected_version: u64,
    ) -> StoreResult<()> {
        let id = uuid(user.id);
        let Some(stored) = self.read_user(&self.st.get_user, user.id).await? else {
            return Err(StoreError::NotFound);
        };
        if stored.version != expected_version {
            return Err(StoreError::VersionConflict {
                expected: expected_version,
            });
        }
        if stored.email == user.email {
            return self.update_row(user, expected_version).await;
        }
        let now = user.updated_at_ms;
        let ttl = i32::try_from(self.cfg.reservation_ttl.as_secs()).unwrap_or(i32::MAX);
        // 1. Reserve the new email; nobody else can take it from here on.
        if !self.claim(&user.email, id, now, Some(ttl)).await? {
            return Err(StoreError::EmailTaken);
        }
        // 2. The decisive step: the row takes the new email.
        let updated = match self
            .lwt(
                &self.st.update_user_email,
                row::update_email_values(user, expected_version)?,
            )
            .await
        {
            Ok(l) if l.applied => Ok(()),
            Ok(l) => Err(match l.bigint("version") {
                None => StoreError::NotFound,
                Some(_) => StoreError::VersionConflict {
                    expected: expected_version,
                },
            }),
            Err(LwtError::Known(e)) => Err(e),
            Err(LwtError::Unknown(e)) => self.resolve_update(user, e).await,
        };
        if let Err(e) = updated {
            // The reservation expires by itself if this release fails.
            if let Err(r) = self
                .lwt(&self.st.release_email, (user.email.as_str(), id))
                .await
            {
                tracing::warn!(user_id = %id, error = %r.into_store(), "could not release an email reservation; it expires by itself");
            }
            return Err(e);
        }
        // 3. The reservation becomes permanent; 4. the old email is released.
        // Both are repaired later if they fail now (see the module docs), so
        // the change stands.
        if let Err(e) = self.finalize(&user.email, id, now).await {
            tracing::warn!(user_id = %id, error = %e, "email changed; making the new index entry permanent failed, the next lookup finishes it");
        }
        if let Err(e) = self
            .lwt(&self.st.release_email, (stored.email.as_str(), id))
            .await
        {
            tracing::warn!(user_id = %id, error = %e.into_store(), "email changed; releasing the old email failed, the next claim of it releases it");
        }
        Ok(())
    }

    pub(super) async fn read_email(&self, st: &Stmt, email: &str) -> StoreResult<EmailEntry> {
        let r = self.exec(st, (email,)).await.map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!(
                "ScyllaDB: users_by_email answered without rows: {e}"
            ))
        })?;
        let row: Option<(Option<Uuid>, Option<i32>)> = rows
            .maybe_first_row()
            .map_err(|e| StoreError::Corrupt(format!("unreadable users_by_email row: {e}")))?;
        Ok(match row {
            None | Some((None, _)) => EmailEntry::Free,
            Some((Some(id), None)) => EmailEntry::Claimed(id),
            Some((Some(id), Some(_))) => EmailEntry::Reserved(id),
        })
    }

    /// Claims `email` for `id` (`ttl`: a reservation), resolving an unknown
    /// outcome by a serial read and releasing a stale entry once. Returns
    /// whether `id` now holds the email.
    pub(super) async fn claim(
        &self,
        email: &str,
        id: Uuid,
        now_ms: u64,
        ttl: Option<i32>,
    ) -> StoreResult<bool> {
        let claimed_at = to_bigint("claimed_at_ms", now_ms)?;
        for attempt in 0..2 {
            let outcome = match ttl {
                None => {
                    self.lwt(&self.st.claim_email, (email, id, claimed_at))
                        .await
                }
                Some(t) => {
                    self.lwt(&self.st.reserve_email, (email, id, claimed_at, t))
                        .await
                }
            };
            let owner = match outcome {
                Ok(l) if l.applied => return Ok(true),
                Ok(l) => l.uuid("user_id"),
                Err(LwtError::Known(e)) => return Err(e),
                Err(LwtError::Unknown(e)) => {
                    match self.read_email(&self.st.find_email_serial, email).await {
                        Ok(EmailEntry::Claimed(o) | EmailEntry::Reserved(o)) if o == id => {
                            return Ok(true);
                        }
                        Ok(EmailEntry::Claimed(o) | EmailEntry::Reserved(o)) => Some(o),
                        // Not applied, and a serial read completes any round
                        // in flight: it never will be.
                        Ok(EmailEntry::Free) => return Err(e),
                        Err(_) => return Err(e),
                    }
                }
            };
            match owner {
                Some(o) if o == id => return Ok(true),
                Some(o) if attempt == 0 && self.release_if_stale(email, o).await? => continue,
                _ => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Releases `email`'s entry if it is a left-over: permanent, and its user
    /// now has another email (an email change whose last step failed).
    async fn release_if_stale(&self, email: &str, owner: Uuid) -> StoreResult<bool> {
        if self.read_email(&self.st.find_email_serial, email).await? != EmailEntry::Claimed(owner) {
            return Ok(false);
        }
        match self
            .read_user(&self.st.get_user_serial, row::user_id(owner))
            .await?
        {
            Some(u) if u.email != email => {}
            _ => return Ok(false),
        }
        match self.lwt(&self.st.release_email, (email, owner)).await {
            Ok(l) => {
                if l.applied {
                    tracing::warn!(
                        user_id = %owner,
                        "released an email index entry left over by an interrupted email change"
                    );
                }
                Ok(l.applied)
            }
            Err(e) => Err(e.into_store()),
        }
    }

    pub(super) async fn finalize(&self, email: &str, id: Uuid, now_ms: u64) -> StoreResult<bool> {
        let claimed_at = to_bigint("claimed_at_ms", now_ms)?;
        match self
            .lwt(&self.st.finalize_email, (id, claimed_at, email, id))
            .await
        {
            Ok(l) => Ok(l.applied),
            Err(e) => Err(e.into_store()),
        }
    }
}
