//! [`TokenStore`] for [`RedisClusterStore`]: sessions, rotation, lockout,
//! rate limits and key material as commands and scripts on the slots of their
//! keys, and the sampled session-count estimate.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use redis::Value;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use super::RedisClusterStore;
use super::keys::is_session_key;
use super::reply::{corrupt, fields, int, session_from};
use crate::codec;
use crate::model::{
    LockoutPolicy, LockoutStatus, RateLimit, RotateOutcome, RotateRequest, SessionId,
    SessionRecord, SigningKeyRecord, UserId,
};
use crate::traits::TokenStore;
use crate::{StoreError, StoreResult};

/// Keys sampled per [`TokenStore::session_count_estimate`].
const SESSION_SAMPLES: u32 = 64;

#[async_trait]
impl TokenStore for RedisClusterStore {
    fn is_local_authority(&self) -> bool {
        false
    }

    async fn create_session(
        &self,
        s: &SessionRecord,
        max_sessions: usize,
    ) -> StoreResult<Vec<SessionId>> {
        let end = s.expires_at_ms.min(s.max_expires_at_ms);
        let ttl = end.saturating_sub(s.last_used_at_ms).max(1);
        let sid = s.id.to_b64();
        let key = self.session_key(s.user_id, s.id);
        let amr = s.amr.join(" ");
        let evicted: Vec<String> = self
            .eval(
                "create_session",
                &self.scripts.create,
                &key,
                &mut self.conn.clone(),
                |inv| {
                    inv.key(self.index_key(s.user_id))
                        .arg(s.last_used_at_ms)
                        .arg(ttl)
                        .arg(end)
                        .arg(&sid)
                        .arg(max_sessions)
                        .arg(self.session_prefix(s.user_id))
                        .arg("c")
                        .arg(s.created_at_ms)
                        .arg("u")
                        .arg(s.last_used_at_ms)
                        .arg("e")
                        .arg(s.expires_at_ms)
                        .arg("m")
                        .arg(s.max_expires_at_ms)
                        .arg("h")
                        .arg(&s.refresh_hash[..])
                        .arg("g")
                        .arg(s.generation)
                        .arg("r")
                        .arg(s.rotated_at_ms)
                        .arg("a")
                        .arg(&amr)
                        .arg("t")
                        .arg(s.auth_time_ms);
                    if let Some(ip) = &s.ip {
                        inv.arg("ip").arg(ip);
                    }
                    if let Some(ua) = &s.user_agent {
                        inv.arg("ua").arg(ua);
                    }
                },
            )
            .await?;
        evicted
            .iter()
            .map(|s| SessionId::from_b64(s).ok_or_else(|| corrupt("session id is malformed")))
            .collect()
    }

    async fn get_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        now_ms: u64,
    ) -> StoreResult<Option<SessionRecord>> {
        Ok(self
            .read_session(user_id, session_id)
            .await?
            .filter(|s| s.is_live(now_ms)))
    }

    async fn list_sessions(&self, user_id: UserId, now_ms: u64) -> StoreResult<Vec<SessionRecord>> {
        let v: Value = self
            .eval(
                "list_sessions",
                &self.scripts.list,
                &self.index_key(user_id),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(self.session_prefix(user_id)).arg(now_ms);
                },
            )
            .await?;
        let Value::Array(items) = v else {
            return Err(corrupt("session listing is not an array"));
        };
        let mut out = Vec::new();
        let mut it = items.into_iter();
        while let (Some(id), Some(f)) = (it.next(), it.next()) {
            let Value::BulkString(id) = id else {
                return Err(corrupt("session id is not a string"));
            };
            let sid = std::str::from_utf8(&id)
                .ok()
                .and_then(SessionId::from_b64)
                .ok_or_else(|| corrupt("session id is malformed"))?;
            let s = session_from(user_id, sid, &fields(f)?)?;
            if s.is_live(now_ms) {
                out.push(s);
            }
        }
        out.sort_by_key(|s| (s.created_at_ms, s.id));
        Ok(out)
    }

    async fn delete_session(&self, user_id: UserId, session_id: SessionId) -> StoreResult<bool> {
        let n: i64 = self
            .eval(
                "delete_session",
                &self.scripts.delete,
                &self.session_key(user_id, session_id),
                &mut self.conn.clone(),
                |inv| {
                    inv.key(self.index_key(user_id)).arg(session_id.to_b64());
                },
            )
            .await?;
        Ok(n == 1)
    }

    async fn delete_all_sessions(&self, user_id: UserId) -> StoreResult<Vec<SessionId>> {
        let ids: Vec<String> = self
            .eval(
                "delete_all_sessions",
                &self.scripts.delete_all,
                &self.index_key(user_id),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(self.session_prefix(user_id));
                },
            )
            .await?;
        ids.iter()
            .map(|s| SessionId::from_b64(s).ok_or_else(|| corrupt("session id is malformed")))
            .collect()
    }

    async fn rotate_refresh(&self, r: &RotateRequest) -> StoreResult<RotateOutcome> {
        let key = self.session_key(r.user_id, r.session_id);
        let mut conn = if self.acked.is_empty() {
            self.conn.clone()
        } else {
            let i = self.next_acked.fetch_add(1, Ordering::Relaxed) % self.acked.len();
            self.acked[i].clone()
        };
        let v: Value = self
            .eval("rotate", &self.scripts.rotate, &key, &mut conn, |inv| {
                inv.key(self.index_key(r.user_id))
                    .arg(r.now_ms)
                    .arg(&r.expected_hash[..])
                    .arg(r.expected_generation)
                    .arg(&r.new_hash[..])
                    .arg(r.expected_generation.saturating_add(1))
                    .arg(r.new_expires_at_ms)
                    .arg(r.session_id.to_b64());
            })
            .await?;
        let Value::Array(items) = v else {
            return Err(corrupt("rotation reply is not an array"));
        };
        let mut it = items.into_iter();
        let code = it.next().map(|v| int(&v)).transpose()?;
        match code {
            Some(0) => Ok(RotateOutcome::Invalid),
            Some(1) => Ok(RotateOutcome::Conflict),
            Some(2) => {
                let f = fields(
                    it.next()
                        .ok_or_else(|| corrupt("rotation reply lacks the session"))?,
                )?;
                let s = session_from(r.user_id, r.session_id, &f)?;
                if !self.acked.is_empty() {
                    self.wait_for_replicas(&mut conn, &key).await;
                }
                Ok(RotateOutcome::Rotated(s))
            }
            _ => Err(corrupt("rotation reply has an unknown code")),
        }
    }

    async fn refresh_chain_key(&self, candidate: [u8; 32]) -> StoreResult<[u8; 32]> {
        let v: Vec<u8> = self
            .eval(
                "refresh_chain_key",
                &self.scripts.get_or_set,
                &format!("{}:refresh-chain", self.cfg.key_prefix),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(&candidate[..]);
                },
            )
            .await?;
        v.as_slice()
            .try_into()
            .map_err(|_| corrupt("refresh-chain secret is not 32 bytes"))
    }

    async fn lockout_status(&self, key: &str, now_ms: u64) -> StoreResult<LockoutStatus> {
        let v: Vec<Option<u64>> = self
            .query(
                "lockout_status",
                redis::cmd("HMGET")
                    .arg(self.lockout_key(key))
                    .arg("f")
                    .arg("ws")
                    .arg("lu")
                    .arg("w"),
            )
            .await?;
        let get = |i: usize| v.get(i).copied().flatten().unwrap_or(0);
        let (f, ws, lu, w) = (get(0), get(1), get(2), get(3));
        Ok(LockoutStatus {
            failures: if now_ms.saturating_sub(ws) < w {
                u32::try_from(f).unwrap_or(u32::MAX)
            } else {
                0
            },
            locked_until_ms: (lu > now_ms).then_some(lu),
        })
    }

    async fn record_login_failure(
        &self,
        key: &str,
        now_ms: u64,
        p: &LockoutPolicy,
    ) -> StoreResult<LockoutStatus> {
        let (counted, locked_until): (u64, u64) = self
            .eval(
                "record_login_failure",
                &self.scripts.failure,
                &self.lockout_key(key),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(now_ms)
                        .arg(p.window_ms)
                        .arg(p.max_failures)
                        .arg(p.base_lock_ms)
                        .arg(p.max_lock_ms);
                },
            )
            .await?;
        Ok(LockoutStatus {
            failures: u32::try_from(counted).unwrap_or(u32::MAX),
            locked_until_ms: (locked_until > now_ms).then_some(locked_until),
        })
    }

    async fn clear_login_failures(&self, key: &str) -> StoreResult<()> {
        let _: i64 = self
            .query(
                "clear_login_failures",
                redis::cmd("DEL").arg(self.lockout_key(key)),
            )
            .await?;
        Ok(())
    }

    async fn rate_limit(
        &self,
        key: &str,
        now_ms: u64,
        limit: &RateLimit,
    ) -> StoreResult<Option<u64>> {
        let emission = limit.emission_interval_ms();
        let tolerance = emission * f64::from(limit.burst.saturating_sub(1));
        let wait: u64 = self
            .eval(
                "rate_limit",
                &self.scripts.rate,
                &format!("{}:rl:{key}", self.cfg.key_prefix),
                &mut self.conn.clone(),
                |inv| {
                    inv.arg(now_ms)
                        .arg(format!("{emission:.3}"))
                        .arg(format!("{tolerance:.3}"));
                },
            )
            .await?;
        Ok((wait > 0).then_some(wait))
    }

    async fn stash(
        &self,
        key: &[u8; 32],
        value: &[u8],
        now_ms: u64,
        expires_at_ms: u64,
    ) -> StoreResult<bool> {
        // The expiry travels with the value, so a take judges it by the
        // engine's clock, and Redis drops the key by itself soon after.
        let mut stored = Vec::with_capacity(8 + value.len());
        stored.extend_from_slice(&expires_at_ms.to_be_bytes());
        stored.extend_from_slice(value);
        let ttl = expires_at_ms.saturating_sub(now_ms).max(1);
        let set: Value = self
            .query(
                "stash",
                redis::cmd("SET")
                    .arg(self.stash_key(key))
                    .arg(stored)
                    .arg("PX")
                    .arg(ttl)
                    .arg("NX"),
            )
            .await?;
        Ok(!matches!(set, Value::Nil))
    }

    async fn take_stashed(&self, key: &[u8; 32], now_ms: u64) -> StoreResult<Option<Vec<u8>>> {
        let v: Option<Vec<u8>> = self
            .query(
                "take_stashed",
                redis::cmd("GETDEL").arg(self.stash_key(key)),
            )
            .await?;
        let Some(v) = v else { return Ok(None) };
        let (exp, value) = v
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("stashed value without its expiry"))?;
        Ok((u64::from_be_bytes(*exp) > now_ms).then(|| value.to_vec()))
    }

    async fn load_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let v: Value = self
            .query(
                "load_signing_keys",
                redis::cmd("HGETALL").arg(self.signing_keys_key()),
            )
            .await?;
        fields(v)?.values().map(|b| codec::decode_key(b)).collect()
    }

    async fn save_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let _: i64 = self
            .query(
                "save_signing_key",
                redis::cmd("HSET")
                    .arg(self.signing_keys_key())
                    .arg(&key.kid)
                    .arg(codec::encode_key(key)),
            )
            .await?;
        Ok(())
    }

    async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
        let _: i64 = self
            .query(
                "delete_signing_key",
                redis::cmd("HDEL").arg(self.signing_keys_key()).arg(kid),
            )
            .await?;
        Ok(())
    }

    async fn purge_expired(&self, _now_ms: u64) -> StoreResult<u64> {
        // Sessions, indexes, lockout and limiter entries carry TTLs: Redis
        // removes them itself.
        Ok(0)
    }

    /// Sums `DBSIZE` over the masters and scales it by the share of session
    /// keys among [`SESSION_SAMPLES`] `RANDOMKEY`s: a statistical estimate
    /// (about ±10 % at a session share of one half), at a cost of a few dozen
    /// commands per call.
    async fn session_count_estimate(&self) -> StoreResult<Option<u64>> {
        let mut conn = self.conn.clone();
        let total: u64 = self
            .timed("dbsize", redis::cmd("DBSIZE").query_async(&mut conn))
            .await?;
        if total == 0 {
            return Ok(Some(0));
        }
        let prefix = format!("{}:{{", self.cfg.key_prefix);
        let (mut seen, mut sessions) = (0u64, 0u64);
        for _ in 0..SESSION_SAMPLES {
            let v: Value = self
                .timed(
                    "randomkey",
                    conn.route_command(
                        redis::cmd("RANDOMKEY"),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                    ),
                )
                .await?;
            if let Value::BulkString(key) = v {
                seen += 1;
                if is_session_key(&key, prefix.as_bytes()) {
                    sessions += 1;
                }
            }
        }
        Ok(Some(
            total
                .saturating_mul(sessions)
                .checked_div(seen)
                .unwrap_or(0),
        ))
    }

    async fn ping(&self) -> StoreResult<()> {
        let v: Value = {
            let mut conn = self.conn.clone();
            self.timed(
                "ping",
                conn.route_command(
                    redis::cmd("PING"),
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                ),
            )
            .await?
        };
        match v {
            Value::SimpleString(_) | Value::BulkString(_) | Value::Okay => Ok(()),
            other => Err(StoreError::Unavailable(format!(
                "redis cluster answered PING with {other:?}"
            ))),
        }
    }

    async fn flush(&self) -> StoreResult<()> {
        // Every acknowledged write is already on a master; persistence and
        // replication are the cluster's configuration.
        Ok(())
    }
}
