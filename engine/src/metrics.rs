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
/// Logins by result (counter; label `result` = ok | invalid | locked |
/// mfa_required | overloaded | throttled | error).
pub const LOGINS_TOTAL: &str = "portcullis_engine_logins_total";
/// Social sign-ins, by `provider` and `result`.
pub const SOCIAL_SIGNINS_TOTAL: &str = "portcullis_engine_social_signins_total";
/// Passkey sign-ins and second steps (counter; label `result` = ok |
/// second_factor | invalid | cloned | error; `cloned` is a sign counter that
/// went backwards).
pub const PASSKEY_SIGNINS_TOTAL: &str = "portcullis_engine_passkey_signins_total";
/// Registrations by result (counter; label `result` = ok | taken | error).
pub const REGISTRATIONS_TOTAL: &str = "portcullis_engine_registrations_total";
/// Refreshes by result (counter; label `result` = ok | invalid | reused | superseded | error).
pub const REFRESHES_TOTAL: &str = "portcullis_engine_refreshes_total";
/// Sessions revoked (counter; label `reason` = logout | logout_all | deleted
/// | reuse | revoke | password_reset | password_change | cap | stale_credentials).
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

/// Requests refused by a per-account or per-recipient limit: mail flows,
/// credential changes, introspection (counter).
pub const ACCOUNT_RATE_LIMITED_TOTAL: &str = "portcullis_engine_account_rate_limited_total";
/// Counter: outbox messages by outcome (`sent`, `retried`, `dropped`, `unvouched`).
pub const MAIL_TOTAL: &str = "portcullis_mail_messages_total";
/// Messages in the outbox, as the mailer last counted (gauge).
pub const OUTBOX_MESSAGES: &str = "portcullis_mail_outbox_messages";
/// Records whose sealed secrets are still under a data key other than the
/// newest, as the last re-sealing pass found (gauge). 0: old keys can be
/// retired.
pub const DATAKEY_OLD_RECORDS: &str = "portcullis_datakey_records_under_old_keys";
/// Records whose secrets were re-sealed under the newest data key (counter).
pub const DATAKEY_RESEALED_TOTAL: &str = "portcullis_datakey_resealed_total";

/// Logins admitted and not yet answered, queued or running (gauge). With
/// the hash queue wait, a per-pod saturation signal for the autoscaler.
pub const LOGINS_IN_FLIGHT: &str = "portcullis_engine_logins_in_flight";
/// Live sessions in the token store, estimated at start-up and then once a
/// minute (gauge; see `TokenStore::session_count_estimate`). Every pod
/// reports the same store-wide figure.
pub const SESSIONS_ACTIVE: &str = "portcullis_engine_sessions_active";
/// Whether a store answered its last ping, every 5 s (gauge 1/0; label
/// `store` = user | token).
pub const STORE_AVAILABLE: &str = "portcullis_store_available";
/// A cluster store's database nodes, by whether this process reaches them,
/// every 5 s (gauge; labels `store` = user, `state` = up | down). A node
/// down while `portcullis_store_available` stays 1 is a degraded cluster
/// still serving at quorum.
pub const STORE_NODES: &str = "portcullis_store_nodes";
/// CPU time of the whole process (counter, microseconds). Divided by
/// [`HASH_CPU_MICROSECONDS_TOTAL`] it is the engine's overhead ratio.
pub const PROCESS_CPU_MICROSECONDS_TOTAL: &str = "portcullis_process_cpu_microseconds_total";

/// How often the gauges above and the shard mailbox depths are sampled.
pub const SAMPLE_INTERVAL_SECS: u64 = 1;

/// Operations per group commit of the embedded store (histogram).
pub use portcullis_storage::embedded::metric::GROUP_COMMIT_SIZE;

/// Buckets for group-commit sizes (operations): 1 .. 1024.
pub const GROUP_COMMIT_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Buckets for hash durations and queue waits (seconds): 1 ms .. 5 s.
pub const HASH_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Buckets for storage operations (seconds): 50 µs .. 1 s.
pub const STORE_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// Label values each counter can take; [`register`] creates every series at
/// zero so that rates and alerts work before the first event.
const COUNTER_LABELS: &[(&str, &str, &[&str])] = &[
    (
        LOGINS_TOTAL,
        "result",
        &[
            "ok",
            "invalid",
            "locked",
            "mfa_required",
            "overloaded",
            "error",
        ],
    ),
    (REGISTRATIONS_TOTAL, "result", &["ok", "taken", "error"]),
    (
        PASSKEY_SIGNINS_TOTAL,
        "result",
        &["ok", "second_factor", "invalid", "cloned", "error"],
    ),
    (
        REFRESHES_TOTAL,
        "result",
        &["ok", "invalid", "reused", "superseded", "error"],
    ),
    (
        SESSIONS_REVOKED_TOTAL,
        "reason",
        &[
            "logout",
            "logout_all",
            "deleted",
            "reuse",
            "revoke",
            "password_reset",
            "password_change",
            "cap",
            "stale_credentials",
            "mfa_change",
            "email_change",
        ],
    ),
    (
        HASH_CPU_MICROSECONDS_TOTAL,
        "op",
        &["hash", "verify", "dummy_verify", "verify_then_hash"],
    ),
    (
        SHARED_RATE_LIMITED_TOTAL,
        "route",
        &["register", "login", "refresh", "forgot", "social"],
    ),
];

/// The results a social sign-in is counted under.
pub const SOCIAL_RESULTS: &[&str] = &[
    "created",
    "ok",
    "mfa_required",
    "account_exists",
    "invalid",
    "locked",
    "unavailable",
    "error",
];

/// Creates the social sign-in series of each configured provider at zero.
pub fn register_social(providers: &[String]) {
    for p in providers {
        for r in SOCIAL_RESULTS {
            metrics::counter!(SOCIAL_SIGNINS_TOTAL, "provider" => p.clone(), "result" => *r)
                .increment(0);
        }
    }
}

/// Describes the engine's metrics and creates every counter series at zero.
/// Call once, after the recorder is installed.
pub fn register() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        HASH_QUEUE_DEPTH,
        "Password hash jobs waiting for a pool thread"
    );
    describe_histogram!(
        HASH_QUEUE_WAIT_SECONDS,
        Unit::Seconds,
        "Time a hash job waited for a pool thread"
    );
    describe_histogram!(HASH_DURATION_SECONDS, Unit::Seconds, "Time a hash job ran");
    describe_counter!(
        HASH_CPU_MICROSECONDS_TOTAL,
        Unit::Microseconds,
        "CPU time inside hash jobs"
    );
    describe_counter!(
        HASH_REJECTED_TOTAL,
        "Hash jobs refused because the pool was saturated (503 overloaded)"
    );
    describe_counter!(LOGINS_TOTAL, "Password logins by result");
    describe_counter!(
        SOCIAL_SIGNINS_TOTAL,
        "Social sign-ins by provider and result (created, ok, mfa_required, account_exists, invalid, locked, unavailable, error)"
    );
    describe_counter!(REGISTRATIONS_TOTAL, "Registrations by result");
    describe_counter!(
        PASSKEY_SIGNINS_TOTAL,
        "Passkey sign-ins and second steps by result (ok, second_factor, invalid, cloned, error)"
    );
    describe_counter!(REFRESHES_TOTAL, "Refresh-token rotations by result");
    describe_counter!(SESSIONS_REVOKED_TOTAL, "Sessions revoked, by reason");
    describe_gauge!(
        SHARD_MAILBOX_DEPTH,
        "Operations admitted to a shard and not finished"
    );
    describe_counter!(
        SHARD_REJECTED_TOTAL,
        "Operations refused because a shard was at capacity"
    );
    describe_histogram!(STORE_OP_SECONDS, Unit::Seconds, "Storage operation latency");
    describe_counter!(STORE_ERRORS_TOTAL, "Storage errors by kind");
    describe_counter!(
        SHARED_RATE_LIMITED_TOTAL,
        "Requests refused by the limit shared across pods"
    );
    describe_counter!(
        KEY_RELOADS_TOTAL,
        "Signing-key reloads for a key this process did not know"
    );
    describe_counter!(TOKEN_VERIFICATIONS_TOTAL, "Access-token verifications");
    describe_gauge!(LOGINS_IN_FLIGHT, "Logins admitted and not yet answered");
    describe_gauge!(
        SESSIONS_ACTIVE,
        "Live sessions in the token store (estimate)"
    );
    describe_gauge!(
        STORE_AVAILABLE,
        "1 when the store answered its last ping, else 0"
    );
    describe_gauge!(
        STORE_NODES,
        "Database nodes of a cluster store, by whether this process reaches them"
    );
    describe_counter!(
        PROCESS_CPU_MICROSECONDS_TOTAL,
        Unit::Microseconds,
        "CPU time of the process"
    );
    for (name, label, values) in COUNTER_LABELS {
        for value in *values {
            metrics::counter!(*name, *label => *value).increment(0);
        }
    }
    describe_counter!(
        ACCOUNT_RATE_LIMITED_TOTAL,
        "Requests refused by a per-account or per-recipient limit (mail, credential changes, introspection)"
    );
    describe_gauge!(OUTBOX_MESSAGES, "Messages waiting in the outbox");
    describe_counter!(
        DATAKEY_RESEALED_TOTAL,
        "Records whose secrets were re-sealed under the newest data key"
    );
    describe_gauge!(
        DATAKEY_OLD_RECORDS,
        "Records with secrets sealed under a data key other than the newest"
    );
    metrics::gauge!(OUTBOX_MESSAGES).set(0.0);
    metrics::gauge!(DATAKEY_OLD_RECORDS).set(0.0);
    for name in [
        HASH_REJECTED_TOTAL,
        SHARD_REJECTED_TOTAL,
        KEY_RELOADS_TOTAL,
        ACCOUNT_RATE_LIMITED_TOTAL,
        DATAKEY_RESEALED_TOTAL,
    ] {
        metrics::counter!(name).increment(0);
    }
    for store in ["user", "token"] {
        for kind in ["unavailable", "timeout", "conflict", "other"] {
            metrics::counter!(STORE_ERRORS_TOTAL, "store" => store, "kind" => kind).increment(0);
        }
    }
    for cache in ["hit", "miss"] {
        for result in ["ok", "invalid"] {
            metrics::counter!(TOKEN_VERIFICATIONS_TOTAL, "cache" => cache, "result" => result)
                .increment(0);
        }
    }
    metrics::gauge!(LOGINS_IN_FLIGHT).set(0.0);
    describe_counter!(
        MAIL_TOTAL,
        "Outbox messages by outcome (sent, retried, dropped, unvouched)"
    );
    for outcome in ["sent", "retried", "dropped", "unvouched"] {
        metrics::counter!(MAIL_TOTAL, "outcome" => outcome).increment(0);
    }
}
