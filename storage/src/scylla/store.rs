//! Running the store's statements (each counted by kind), and writing and
//! reading `users` rows: versioned updates, unknown outcomes settled by a
//! serial read, and the outbox mail written with a row.

use scylla::errors::ExecutionError;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use uuid::Uuid;

use super::lwt::{Lwt, LwtError, lwt};
use super::prepared::Stmt;
use super::row::{self, UserRow, to_bigint, uuid};
use super::{ScyllaUserStore, errmap};
use crate::model::{OutboxRecord, UserId, UserRecord};
use crate::traits::UserStore;
use crate::{StoreError, StoreResult};

impl ScyllaUserStore {
    /// Runs one statement: every statement of the store goes through here,
    /// and is counted by kind (`portcullis_cql_statements_total`).
    pub(super) async fn exec(
        &self,
        st: &Stmt,
        values: impl SerializeRow,
    ) -> Result<QueryResult, ExecutionError> {
        st.count.increment(1);
        self.session.execute_unpaged(&st.st, values).await
    }

    pub(super) fn err(&self, e: &ExecutionError) -> StoreError {
        errmap::execution(e, self.cfg.request_timeout)
    }

    pub(super) async fn lwt(&self, st: &Stmt, values: impl SerializeRow) -> Result<Lwt, LwtError> {
        match self.exec(st, values).await {
            Ok(r) => lwt(r).map_err(LwtError::Known),
            Err(e) if errmap::outcome_unknown(&e) => Err(LwtError::Unknown(self.err(&e))),
            Err(e) => Err(LwtError::Known(self.err(&e))),
        }
    }

    /// Queues `mail` before the row that vouches for it is written.
    pub(super) async fn queue_mail(&self, mail: &[OutboxRecord]) -> StoreResult<()> {
        for m in mail {
            self.exec(&self.st.insert_mail, row::outbox_values(m)?)
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(())
    }

    /// After the row write: a definite failure withdraws the queued mail
    /// (best effort: unvouched mail is never sent anyway); success, or an
    /// outcome still unknown, leaves it to the mailer.
    pub(super) async fn settle_mail(&self, mail: &[OutboxRecord], result: &StoreResult<()>) {
        let definite = matches!(
            result,
            Err(StoreError::VersionConflict { .. }
                | StoreError::NotFound
                | StoreError::EmailTaken
                | StoreError::Backend(_))
        );
        if !definite {
            return;
        }
        for m in mail {
            if let Err(e) = self.delete_mail(m).await {
                tracing::debug!(error = %e, "withdrawing unvouched mail failed; the mailer drops it");
            }
        }
    }

    pub(super) async fn update_row(
        &self,
        user: &UserRecord,
        expected_version: u64,
    ) -> StoreResult<()> {
        match self
            .lwt(
                &self.st.update_user,
                row::update_values(user, expected_version)?,
            )
            .await
        {
            Ok(l) if l.applied => Ok(()),
            Ok(l) => match (l.bigint("version"), l.text("email")) {
                (None, _) => Err(StoreError::NotFound),
                (Some(v), Some(email))
                    if v == to_bigint("version", expected_version)? && email != user.email =>
                {
                    Err(StoreError::Backend(
                        "update_user cannot change the email address".into(),
                    ))
                }
                _ => Err(StoreError::VersionConflict {
                    expected: expected_version,
                }),
            },
            Err(LwtError::Known(e)) => Err(e),
            Err(LwtError::Unknown(e)) => self.resolve_update(user, e).await,
        }
    }

    pub(super) async fn read_user(&self, st: &Stmt, id: UserId) -> StoreResult<Option<UserRecord>> {
        let r = self.exec(st, (uuid(id),)).await.map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!("ScyllaDB: users answered without rows: {e}"))
        })?;
        rows.maybe_first_row::<UserRow>()
            .map_err(|e| StoreError::Corrupt(format!("unreadable users row: {e}")))?
            .map(UserRow::into_record)
            .transpose()
    }

    /// Best-effort removal of a user row whose email claim failed.
    pub(super) async fn forget_row(&self, id: Uuid) {
        if let Err(e) = self.exec(&self.st.delete_user, (id,)).await {
            tracing::warn!(user_id = %id, error = %self.err(&e), "could not delete the row of a user whose email claim failed (it is unreachable)");
        }
    }

    /// An LWT update of the `users` row whose outcome is unknown: applied iff
    /// the row now is `user` (read at serial consistency).
    pub(super) async fn resolve_update(&self, user: &UserRecord, e: StoreError) -> StoreResult<()> {
        match self.read_user(&self.st.get_user_serial, user.id).await {
            Ok(Some(now)) if &now == user => Ok(()),
            _ => Err(e),
        }
    }
}
