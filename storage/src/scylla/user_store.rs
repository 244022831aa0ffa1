//! [`UserStore`] for [`ScyllaUserStore`]; the statements each operation
//! sends are counted in the table of the module docs.

use async_trait::async_trait;
use uuid::Uuid;

use super::email::EmailEntry;
use super::lwt::LwtError;
use super::row::{self, UserRow, to_bigint, uuid};
use super::{ScyllaUserStore, schema};
use crate::model::{IdentityClaim, OutboxRecord, UserId, UserRecord};
use crate::traits::UserStore;
use crate::{StoreError, StoreResult};

#[async_trait]
impl UserStore for ScyllaUserStore {
    async fn create_user(&self, user: &UserRecord) -> StoreResult<()> {
        let id = uuid(user.id);
        self.exec(&self.st.insert_user, row::insert_values(user)?)
            .await
            .map_err(|e| self.err(&e))?;
        match self.claim(&user.email, id, user.created_at_ms, None).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.forget_row(id).await;
                Err(StoreError::EmailTaken)
            }
            // Unknown whether the claim applied: the row must stay, or a
            // claim could point at nothing.
            Err(e) => Err(e),
        }
    }

    async fn find_user_id_by_email(&self, email: &str) -> StoreResult<Option<UserId>> {
        match self.read_email(&self.st.find_email, email).await? {
            EmailEntry::Free => Ok(None),
            EmailEntry::Claimed(id) => Ok(Some(row::user_id(id))),
            EmailEntry::Reserved(id) => {
                // An email change in progress, or one interrupted after the
                // row took the email: only the latter makes it the user's.
                let user = self.read_user(&self.st.get_user, row::user_id(id)).await?;
                match user {
                    Some(u) if u.email == email => {
                        if let Err(e) = self.finalize(email, id, u.updated_at_ms).await {
                            tracing::warn!(user_id = %id, error = %e, "could not finish an interrupted email change; the next lookup retries");
                        }
                        Ok(Some(u.id))
                    }
                    _ => Ok(None),
                }
            }
        }
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRecord>> {
        self.read_user(&self.st.get_user, id).await
    }

    async fn find_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityClaim>> {
        self.read_identity(&self.st.find_identity, provider, subject)
            .await
    }

    async fn claim_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
        now_ms: u64,
    ) -> StoreResult<IdentityClaim> {
        self.claim_identity_row(provider, subject, user, now_ms)
            .await
    }

    async fn release_identity(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
    ) -> StoreResult<bool> {
        self.release_identity_row(provider, subject, user).await
    }

    async fn update_user_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.queue_mail(mail).await?;
        let r = self.update_row(user, expected_version).await;
        self.settle_mail(mail, &r).await;
        r
    }

    async fn change_email_with_mail(
        &self,
        user: &UserRecord,
        expected_version: u64,
        mail: &[OutboxRecord],
    ) -> StoreResult<()> {
        self.queue_mail(mail).await?;
        let r = self.change_row_email(user, expected_version).await;
        self.settle_mail(mail, &r).await;
        r
    }

    async fn due_mail(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<OutboxRecord>> {
        let mut due = Vec::new();
        let mut seen = 0u64;
        for bucket in 0..schema::OUTBOX_BUCKETS {
            let r = self
                .exec(&self.st.bucket_mail, (bucket,))
                .await
                .map_err(|e| self.err(&e))?;
            let rows = r.into_rows_result().map_err(|e| {
                StoreError::Backend(format!("ScyllaDB: outbox answered without rows: {e}"))
            })?;
            for row in rows
                .rows::<row::OutboxRow>()
                .map_err(|e| StoreError::Corrupt(format!("unreadable outbox row: {e}")))?
            {
                let m = row
                    .map_err(|e| StoreError::Corrupt(format!("unreadable outbox row: {e}")))?
                    .into_record()?;
                seen += 1;
                if m.due_at_ms <= now_ms {
                    due.push(m);
                }
            }
        }
        self.outbox_seen
            .store(seen, std::sync::atomic::Ordering::Relaxed);
        due.sort_by_key(|m| m.id);
        due.truncate(limit);
        Ok(due)
    }

    async fn claim_mail(
        &self,
        mail: &OutboxRecord,
        now_ms: u64,
        until_ms: u64,
    ) -> StoreResult<bool> {
        let values = (
            to_bigint("claimed_until_ms", until_ms)?,
            schema::outbox_bucket(&mail.id),
            Uuid::from_bytes(mail.id),
            to_bigint("now_ms", now_ms)?,
        );
        // An unknown outcome is an error: the caller does not deliver, and
        // a claim that did apply expires by itself.
        self.lwt(&self.st.claim_mail, values)
            .await
            .map(|l| l.applied)
            .map_err(LwtError::into_store)
    }

    async fn retry_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        let values = (
            to_bigint("due_at_ms", mail.due_at_ms)?,
            i32::try_from(mail.attempts).unwrap_or(i32::MAX),
            schema::outbox_bucket(&mail.id),
            Uuid::from_bytes(mail.id),
        );
        self.lwt(&self.st.retry_mail, values)
            .await
            .map(|_| ())
            .map_err(LwtError::into_store)
    }

    async fn delete_mail(&self, mail: &OutboxRecord) -> StoreResult<()> {
        self.exec(
            &self.st.delete_mail,
            (schema::outbox_bucket(&mail.id), Uuid::from_bytes(mail.id)),
        )
        .await
        .map(|_| ())
        .map_err(|e| self.err(&e))
    }

    async fn outbox_len(&self) -> StoreResult<Option<u64>> {
        // Counted by the mailer's last scan of every bucket (each poll).
        Ok(Some(
            self.outbox_seen.load(std::sync::atomic::Ordering::Relaxed),
        ))
    }

    async fn scan_users(
        &self,
        after: Option<UserId>,
        limit: usize,
    ) -> StoreResult<Vec<UserRecord>> {
        let limit = i32::try_from(limit.max(1)).unwrap_or(i32::MAX);
        let r = match after {
            None => self.exec(&self.st.scan_users_first, (limit,)).await,
            Some(id) => {
                self.exec(&self.st.scan_users_after, (uuid(id), limit))
                    .await
            }
        }
        .map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!("ScyllaDB: users answered without rows: {e}"))
        })?;
        rows.rows::<UserRow>()
            .map_err(|e| StoreError::Corrupt(format!("unreadable users row: {e}")))?
            .map(|row| {
                row.map_err(|e| StoreError::Corrupt(format!("unreadable users row: {e}")))?
                    .into_record()
            })
            .collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        self.exec(&self.st.ping, ())
            .await
            .map(|_| ())
            .map_err(|e| self.err(&e))
    }

    fn nodes(&self) -> Option<crate::model::NodeCount> {
        let state = self.session.get_cluster_state();
        let local = self.cfg.local_dc.as_deref();
        let (mut up, mut down) = (0, 0);
        for node in state.get_nodes_info() {
            if local.is_some() && node.datacenter.as_deref() != local {
                continue;
            }
            if node.is_connected() {
                up += 1;
            } else {
                down += 1;
            }
        }
        Some(crate::model::NodeCount { up, down })
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every acknowledged write is already on a quorum of replicas.
        Ok(())
    }
}
