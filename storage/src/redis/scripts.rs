//! The Lua scripts. Each runs atomically on the one node that owns its keys;
//! every key a script touches carries the same hash tag (`{<user id>}`), or
//! is the script's only key.
//!
//! Numbers cross into Lua as decimal strings computed in Rust and are
//! compared with `tonumber`; values written back are the caller's strings
//! wherever possible, so no float formatting decides what is stored.
//!
//! A session is a hash:
//! `c` created, `u` last used, `e` sliding expiry, `m` absolute expiry,
//! `h` refresh-token hash (32 raw bytes), `g` generation, `r` rotated at,
//! `a` the `amr` values (space-separated), `t` the authentication time,
//! and optional `ip`, `ua`. Its key expires with the session (`PEXPIRE` to
//! `min(e, m)`). The user's index is a sorted set of session ids scored by
//! that expiry, expiring with the user's last session.

/// Creates (or replaces) a session, then keeps at most `cap` sessions of
/// the user (0: no limit): the others with the earliest sliding expiry,
/// which every rotation pushes forward (so: the least recently used), are
/// deleted.
///
/// KEYS: session, index. ARGV: now, ttl ms, expiry score, session id,
/// cap, session key prefix (same hash tag), then field/value pairs.
/// Returns the ids deleted to respect the cap.
pub(crate) const CREATE_SESSION: &str = r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 7))
local ttl = tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
local cur = redis.call('PTTL', KEYS[2])
if cur < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
local cap = tonumber(ARGV[5])
local out = {}
if cap > 0 then
  local excess = redis.call('ZCARD', KEYS[2]) - cap
  if excess > 0 then
    local ids = redis.call('ZRANGE', KEYS[2], 0, excess)
    for _, id in ipairs(ids) do
      if #out < excess and id ~= ARGV[4] then
        redis.call('DEL', ARGV[6] .. id)
        redis.call('ZREM', KEYS[2], id)
        out[#out + 1] = id
      end
    end
  end
end
return out
";

/// Lists a user's sessions whose expiry is after `now`.
///
/// KEYS: index. ARGV: session key prefix (same hash tag), now.
/// Returns a flat array: id, fields, id, fields, ...
pub(crate) const LIST_SESSIONS: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')
local out = {}
for _, id in ipairs(ids) do
  local h = redis.call('HGETALL', ARGV[1] .. id)
  if #h > 0 then
    out[#out + 1] = id
    out[#out + 1] = h
  end
end
return out
";

/// Deletes one session. KEYS: session, index. ARGV: session id.
/// Returns 1 when it existed.
pub(crate) const DELETE_SESSION: &str = r"
local n = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return n
";

/// Deletes every session of a user at once.
///
/// KEYS: index. ARGV: session key prefix (same hash tag).
/// Returns the ids of the sessions that existed.
pub(crate) const DELETE_ALL_SESSIONS: &str = r"
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  if redis.call('DEL', ARGV[1] .. id) == 1 then out[#out + 1] = id end
end
redis.call('DEL', KEYS[1])
return out
";

/// Refresh-token rotation: compare-and-set on (hash, generation).
///
/// KEYS: session, index. ARGV: now, expected hash, expected generation,
/// new hash, new generation, new sliding expiry, session id.
/// Returns `{0}` (no live session), `{1}` (conflict) or `{2, fields}`.
pub(crate) const ROTATE: &str = r"
local s = redis.call('HMGET', KEYS[1], 'h', 'g', 'e', 'm')
if not s[1] or not s[3] or not s[4] then return {0} end
local now = tonumber(ARGV[1])
if now >= tonumber(s[3]) or now >= tonumber(s[4]) then return {0} end
if s[1] ~= ARGV[2] or s[2] ~= ARGV[3] then return {1} end
local e = ARGV[6]
if tonumber(e) > tonumber(s[4]) then e = s[4] end
redis.call('HSET', KEYS[1], 'h', ARGV[4], 'g', ARGV[5], 'e', e, 'u', ARGV[1], 'r', ARGV[1])
local ttl = tonumber(e) - now
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], e, ARGV[7])
local cur = redis.call('PTTL', KEYS[2])
if cur < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return {2, redis.call('HGETALL', KEYS[1])}
";

/// Counts one failed login and locks when the policy says so; the same rules
/// as the embedded backend's in-memory counters.
///
/// KEYS: lockout key. ARGV: now, window, max failures, base lock, max lock.
/// Returns `{failures counted, locked until}`.
pub(crate) const RECORD_FAILURE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local maxf = tonumber(ARGV[3])
local base = tonumber(ARGV[4])
local maxl = tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'f', 'ws', 'lu', 'lc')
local f = tonumber(v[1]) or 0
local ws = tonumber(v[2]) or 0
local lu = tonumber(v[3]) or 0
local lc = tonumber(v[4]) or 0
if lu > now then return {0, lu} end
if lc > 0 and now > lu + window then lc = 0 end
if now - ws >= window then
  f = 0
  ws = now
end
f = f + 1
local counted = f
if f >= maxf then
  lc = lc + 1
  local d = base * (2 ^ math.min(lc - 1, 32))
  if d > maxl then d = maxl end
  lu = now + d
  f = 0
  ws = now
end
redis.call('HSET', KEYS[1], 'f', f, 'ws', ws, 'lu', lu, 'lc', lc, 'w', window)
redis.call('PEXPIRE', KEYS[1], math.max(lu, ws) + window - now)
return {counted, lu}
";

/// A GCRA rate limiter (the algorithm `governor` runs in process).
///
/// KEYS: limiter key. ARGV: now (ms), emission interval (ms, may be
/// fractional), burst tolerance (ms). Returns 0 when admitted, otherwise the
/// milliseconds to wait.
pub(crate) const RATE_LIMIT: &str = r"
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tol = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
if tat - now > tol then return math.ceil(tat - tol - now) end
local new_tat = tat + t
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now))
return 0
";

/// Stores the candidate unless a value exists; returns the stored value.
/// KEYS: the secret's key. ARGV: candidate.
pub(crate) const GET_OR_SET: &str = r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
";
