//! The identity index (`identities`): (provider, subject) -> user, unique
//! through lightweight transactions like the email index.

use uuid::Uuid;

use super::ScyllaUserStore;
use super::lwt::LwtError;
use super::prepared::Stmt;
use super::row::{self, to_bigint, uuid};
use crate::model::{IdentityClaim, UserId};
use crate::{StoreError, StoreResult};

impl ScyllaUserStore {
    pub(super) async fn read_identity(
        &self,
        st: &Stmt,
        provider: &str,
        subject: &str,
    ) -> StoreResult<Option<IdentityClaim>> {
        let r = self
            .exec(st, (provider, subject))
            .await
            .map_err(|e| self.err(&e))?;
        let rows = r.into_rows_result().map_err(|e| {
            StoreError::Backend(format!("ScyllaDB: identities answered without rows: {e}"))
        })?;
        let row: Option<(Option<Uuid>, Option<i64>)> = rows
            .maybe_first_row()
            .map_err(|e| StoreError::Corrupt(format!("unreadable identities row: {e}")))?;
        Ok(match row {
            Some((Some(id), at)) => Some(IdentityClaim {
                user_id: row::user_id(id),
                claimed_at_ms: at.map_or(0, |a| u64::try_from(a).unwrap_or(0)),
            }),
            _ => None,
        })
    }

    pub(super) async fn claim_identity_row(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
        now_ms: u64,
    ) -> StoreResult<IdentityClaim> {
        let id = uuid(user);
        let at = to_bigint("claimed_at_ms", now_ms)?;
        let mine = IdentityClaim {
            user_id: user,
            claimed_at_ms: now_ms,
        };
        match self
            .lwt(&self.st.claim_identity, (provider, subject, id, at))
            .await
        {
            Ok(l) if l.applied => Ok(mine),
            Ok(l) => match l.uuid("user_id") {
                Some(o) => Ok(IdentityClaim {
                    user_id: row::user_id(o),
                    claimed_at_ms: l
                        .bigint("claimed_at_ms")
                        .map_or(0, |a| u64::try_from(a).unwrap_or(0)),
                }),
                None => Err(StoreError::Backend(
                    "ScyllaDB: identity claim refused without an owner".into(),
                )),
            },
            Err(LwtError::Known(e)) => Err(e),
            // A serial read completes any round in flight: what it finds
            // is the outcome.
            Err(LwtError::Unknown(e)) => {
                match self
                    .read_identity(&self.st.find_identity_serial, provider, subject)
                    .await
                {
                    Ok(Some(c)) => Ok(c),
                    _ => Err(e),
                }
            }
        }
    }

    pub(super) async fn release_identity_row(
        &self,
        provider: &str,
        subject: &str,
        user: UserId,
    ) -> StoreResult<bool> {
        match self
            .lwt(&self.st.release_identity, (provider, subject, uuid(user)))
            .await
        {
            Ok(l) => Ok(l.applied),
            Err(LwtError::Known(e)) => Err(e),
            Err(LwtError::Unknown(e)) => {
                match self
                    .read_identity(&self.st.find_identity_serial, provider, subject)
                    .await
                {
                    Ok(Some(c)) if c.user_id == user => Err(e),
                    Ok(_) => Ok(true),
                    Err(_) => Err(e),
                }
            }
        }
    }
}
