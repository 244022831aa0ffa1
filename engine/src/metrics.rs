//! Metric names and histogram buckets of the engine.
//!
//! Names follow `portcullis_<component>_<what>_<unit>`. The exporter (installed
//! by the binary) applies the bucket constants below to the matching histograms.

/// Password hash jobs waiting beyond the running ones (gauge).
pub const HASH_QUEUE_DEPTH: &str = "portcullis_hash_queue_depth";
/// Time a hash job waited before a pool thread took it (histogram, seconds).
pub const HASH_QUEUE_WAIT_SECONDS: &str = "portcullis_hash_queue_wait_seconds";
/// Time a hash job ran (histogram, seconds; label `op` = hash | verify | dummy_verify).
pub const HASH_DURATION_SECONDS: &str = "portcullis_hash_duration_seconds";
/// CPU time spent inside hash jobs (counter, microseconds; label `op`). With
/// the process's CPU time it gives the engine's overhead per hash.
pub const HASH_CPU_MICROSECONDS_TOTAL: &str = "portcullis_hash_cpu_microseconds_total";
/// Hash jobs refused because the pool was saturated (counter).
pub const HASH_REJECTED_TOTAL: &str = "portcullis_hash_rejected_total";
/// Logins by result (counter; label `result` = ok | invalid | locked | mfa_required | error).
pub const LOGINS_TOTAL: &str = "portcullis_engine_logins_total";
/// Registrations by result (counter; label `result` = ok | taken | error).
pub const REGISTRATIONS_TOTAL: &str = "portcullis_engine_registrations_total";
/// Refreshes by result (counter; label `result` = ok | invalid | reused | superseded | error).
pub const REFRESHES_TOTAL: &str = "portcullis_engine_refreshes_total";
/// Sessions revoked (counter; label `reason` = logout | logout_all | deleted | reuse | revoke).
pub const SESSIONS_REVOKED_TOTAL: &str = "portcullis_engine_sessions_revoked_total";
/// Operations admitted to a shard and not finished (gauge; label `shard`).
pub const SHARD_MAILBOX_DEPTH: &str = "portcullis_shard_mailbox_depth";
/// Operations refused because a shard was at capacity (counter).
pub const SHARD_REJECTED_TOTAL: &str = "portcullis_shard_rejected_total";
/// Storage operation latency (histogram, seconds; labels `store`, `op`).
pub const STORE_OP_SECONDS: &str = "portcullis_store_operation_duration_seconds";
/// Storage errors (counter; labels `store`, `kind` = unavailable | timeout | other).
pub const STORE_ERRORS_TOTAL: &str = "portcullis_store_errors_total";
/// Requests refused by the limit shared across pods (counter; label `route`).
pub const SHARED_RATE_LIMITED_TOTAL: &str = "portcullis_engine_shared_rate_limited_total";
/// Signing-key reloads triggered by a token signed with a key this process
/// did not know yet (counter).
pub const KEY_RELOADS_TOTAL: &str = "portcullis_tokens_key_reloads_total";
/// Access-token verifications (counter; label `cache` = hit | miss, `result` = ok | invalid).
pub const TOKEN_VERIFICATIONS_TOTAL: &str = "portcullis_tokens_verifications_total";

/// Buckets for hash durations and queue waits (seconds): 1 ms .. 5 s.
pub const HASH_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets for storage operations (seconds): 50 µs .. 1 s.
pub const STORE_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
