//! Lightweight-transaction answers: whether one applied and the current
//! values of the columns it was conditioned on, and whether a failed one
//! certainly did not apply.

use scylla::response::query_result::QueryResult;
use scylla::value::{CqlValue, Row};
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// The outcome of a lightweight transaction: whether it applied, and the
/// current values of the columns it was conditioned on (when it did not).
#[derive(Debug, Default)]
pub(super) struct Lwt {
    pub(super) applied: bool,
    columns: Vec<(String, Option<CqlValue>)>,
}

impl Lwt {
    fn column(&self, name: &str) -> Option<&CqlValue> {
        self.columns
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_ref())
    }

    pub(super) fn uuid(&self, name: &str) -> Option<Uuid> {
        match self.column(name) {
            Some(CqlValue::Uuid(u)) => Some(*u),
            _ => None,
        }
    }

    pub(super) fn bigint(&self, name: &str) -> Option<i64> {
        match self.column(name) {
            Some(CqlValue::BigInt(v)) => Some(*v),
            _ => None,
        }
    }

    pub(super) fn text(&self, name: &str) -> Option<&str> {
        match self.column(name) {
            Some(CqlValue::Text(v) | CqlValue::Ascii(v)) => Some(v),
            _ => None,
        }
    }
}

pub(super) fn lwt(result: QueryResult) -> StoreResult<Lwt> {
    let rows = result
        .into_rows_result()
        .map_err(|e| StoreError::Backend(format!("ScyllaDB: LWT answered without rows: {e}")))?;
    let names: Vec<String> = rows
        .column_specs()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    let row: Option<Row> = rows
        .maybe_first_row::<Row>()
        .map_err(|e| StoreError::Backend(format!("ScyllaDB: unreadable LWT answer: {e}")))?;
    let Some(row) = row else {
        return Err(StoreError::Backend("ScyllaDB: empty LWT answer".into()));
    };
    let columns: Vec<(String, Option<CqlValue>)> = names.into_iter().zip(row.columns).collect();
    let applied = matches!(
        columns.iter().find(|(n, _)| n == "[applied]"),
        Some((_, Some(CqlValue::Boolean(true))))
    );
    Ok(Lwt { applied, columns })
}

pub(super) enum LwtError {
    /// Certainly not applied.
    Known(StoreError),
    /// May have been applied.
    Unknown(StoreError),
}

impl LwtError {
    /// The error, whatever the outcome.
    pub(super) fn into_store(self) -> StoreError {
        match self {
            LwtError::Known(e) | LwtError::Unknown(e) => e,
        }
    }
}
