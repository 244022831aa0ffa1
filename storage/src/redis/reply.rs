//! Driver errors as [`StoreError`]s (and their metric label), and replies
//! as records: hash replies as fields, fields as a [`SessionRecord`].

use std::collections::HashMap;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

use crate::model::{SessionId, SessionRecord, UserId};
use crate::{StoreError, StoreResult};

/// Maps a driver error to the storage error the engine understands.
pub(super) fn store_err(e: &RedisError, timeout: Duration) -> StoreError {
    if e.is_timeout() {
        return StoreError::Timeout(crate::ms(timeout));
    }
    match e.kind() {
        ErrorKind::Io
        | ErrorKind::ClusterConnectionNotFound
        | ErrorKind::Server(
            ServerErrorKind::ClusterDown
            | ServerErrorKind::TryAgain
            | ServerErrorKind::MasterDown
            | ServerErrorKind::BusyLoading
            | ServerErrorKind::ReadOnly
            | ServerErrorKind::Moved
            | ServerErrorKind::Ask
            // Only after `eval` reloaded the script and it was still
            // missing: the key's master is changing under it.
            | ServerErrorKind::NoScript,
        ) => StoreError::Unavailable(format!("redis cluster: {e}")),
        _ => StoreError::Backend(format!("redis cluster: {e}")),
    }
}

pub(super) fn error_kind(e: &RedisError) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_cluster_error()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly)
        )
    {
        "cluster"
    } else if matches!(
        e.kind(),
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound
    ) {
        "connection"
    } else if matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ResponseError)) {
        "script"
    } else {
        "other"
    }
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("redis: {what}"))
}

/// `field -> value` of a hash reply (RESP2 flat array or RESP3 map).
pub(super) fn fields(v: Value) -> StoreResult<HashMap<String, Vec<u8>>> {
    let pairs: Vec<(Value, Value)> = match v {
        Value::Map(m) => m,
        Value::Array(a) => {
            if a.len() % 2 != 0 {
                return Err(corrupt("hash reply has an odd length"));
            }
            let mut it = a.into_iter();
            let mut out = Vec::new();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                out.push((k, v));
            }
            out
        }
        Value::Nil => Vec::new(),
        _ => return Err(corrupt("unexpected reply for a hash")),
    };
    let mut out = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        match (k, v) {
            (Value::BulkString(k), Value::BulkString(v)) => {
                let k = String::from_utf8(k).map_err(|_| corrupt("hash field is not UTF-8"))?;
                out.insert(k, v);
            }
            _ => return Err(corrupt("hash field or value is not a string")),
        }
    }
    Ok(out)
}

fn num(f: &HashMap<String, Vec<u8>>, k: &str) -> StoreResult<u64> {
    let v = f
        .get(k)
        .ok_or_else(|| corrupt(&format!("session field {k} missing")))?;
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(&format!("session field {k} is not a number")))
}

fn opt_text(f: &HashMap<String, Vec<u8>>, k: &str) -> StoreResult<Option<String>> {
    f.get(k)
        .map(|v| String::from_utf8(v.clone()).map_err(|_| corrupt("session text is not UTF-8")))
        .transpose()
}

pub(super) fn session_from(
    user_id: UserId,
    id: SessionId,
    f: &HashMap<String, Vec<u8>>,
) -> StoreResult<SessionRecord> {
    let refresh_hash: [u8; 32] = f
        .get("h")
        .and_then(|h| h.as_slice().try_into().ok())
        .ok_or_else(|| corrupt("session refresh hash missing or malformed"))?;
    Ok(SessionRecord {
        user_id,
        id,
        created_at_ms: num(f, "c")?,
        last_used_at_ms: num(f, "u")?,
        expires_at_ms: num(f, "e")?,
        max_expires_at_ms: num(f, "m")?,
        ip: opt_text(f, "ip")?,
        user_agent: opt_text(f, "ua")?,
        refresh_hash,
        generation: num(f, "g")?,
        rotated_at_ms: num(f, "r")?,
        // Sessions opened before these fields existed were password sign-ins.
        amr: match opt_text(f, "a")? {
            Some(a) => a
                .split(' ')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
            None => vec!["pwd".to_owned()],
        },
        auth_time_ms: match f.get("t") {
            Some(_) => num(f, "t")?,
            None => num(f, "c")?,
        },
    })
}

pub(super) fn int(v: &Value) -> StoreResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(corrupt("expected an integer reply")),
    }
}
