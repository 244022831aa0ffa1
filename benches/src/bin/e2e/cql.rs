//! The `scylla` phase's accounting: samples of the server's CQL statement
//! counters, its mail sent and Cassandra's CPU, their differences per
//! operation, and the table they print as.

use std::time::{Duration, Instant};

use portcullis_benches::process_cpu;

use crate::measure::{metric_sum, scrape};
use crate::server::Server;

/// What the ScyllaDB phase reads before and after each window: the server's
/// `portcullis_cql_statements_total` by kind, its mail sent, Cassandra's CPU.
#[derive(Clone, Copy)]
pub(crate) struct CqlSample {
    pub(crate) at: Instant,
    /// reads, writes, LWTs.
    pub(crate) cql: [f64; 3],
    pub(crate) mail_sent: f64,
    pub(crate) cassandra: Duration,
}

impl CqlSample {
    pub(crate) fn take(srv: &Server, cassandra_pid: u32) -> CqlSample {
        let page = scrape(srv);
        let cql = ["read", "write", "lwt"].map(|k| {
            metric_sum(
                &page,
                "portcullis_cql_statements_total",
                &format!("kind=\"{k}\""),
            )
        });
        CqlSample {
            at: Instant::now(),
            cql,
            mail_sent: metric_sum(&page, "portcullis_mail_messages_total", "outcome=\"sent\""),
            cassandra: process_cpu(cassandra_pid).unwrap_or_default(),
        }
    }
}

/// What happened between two samples.
#[derive(Clone, Copy)]
pub(crate) struct CqlDelta {
    pub(crate) secs: f64,
    pub(crate) cql: [f64; 3],
    pub(crate) mail_sent: f64,
    pub(crate) cassandra: Duration,
}

impl CqlDelta {
    pub(crate) fn between(a: &CqlSample, b: &CqlSample) -> CqlDelta {
        CqlDelta {
            secs: (b.at - a.at).as_secs_f64(),
            cql: [0, 1, 2].map(|i| b.cql[i] - a.cql[i]),
            mail_sent: b.mail_sent - a.mail_sent,
            cassandra: b.cassandra.saturating_sub(a.cassandra),
        }
    }

    pub(crate) fn plus(self, o: CqlDelta) -> CqlDelta {
        CqlDelta {
            secs: self.secs + o.secs,
            cql: [0, 1, 2].map(|i| self.cql[i] + o.cql[i]),
            mail_sent: self.mail_sent + o.mail_sent,
            cassandra: self.cassandra + o.cassandra,
        }
    }

    /// Statements per op after taking away what the idle server issues
    /// in the same time (the mailer's outbox scan, the availability ping).
    pub(crate) fn per_op(&self, idle: &CqlDelta, ops: f64) -> [f64; 3] {
        [0, 1, 2].map(|i| {
            let v = (self.cql[i] - idle.cql[i] / idle.secs * self.secs) / ops.max(1.0);
            // No "-0.00" for a residue of the idle estimate.
            if v.abs() < 0.005 { 0.0 } else { v }
        })
    }

    /// Cassandra CPU µs per op, its idle CPU over the same time taken away.
    pub(crate) fn cassandra_us(&self, idle: &CqlDelta, ops: f64) -> f64 {
        let idle_us = idle.cassandra.as_secs_f64() * 1e6 / idle.secs * self.secs;
        (self.cassandra.as_secs_f64() * 1e6 - idle_us) / ops.max(1.0)
    }
}

/// One line of the CQL table.
pub(crate) struct CqlRow {
    pub(crate) name: String,
    pub(crate) ops: f64,
    pub(crate) server_us: f64,
    pub(crate) cassandra_us: f64,
    pub(crate) per_op: [f64; 3],
}

pub(crate) fn print_cql_rows(rows: &[CqlRow]) {
    println!();
    println!(
        "| {:<44} | {:>6} | {:>11} | {:>14} | {:>8} | {:>8} | {:>8} |",
        "operation (users in Cassandra, tokens in Redis)",
        "ops",
        "server µs/op",
        "Cassandra µs/op",
        "reads/op",
        "writes/op",
        "LWTs/op"
    );
    println!(
        "|{:-<46}|{:->8}|{:->13}|{:->16}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:<44} | {:>6} | {:>11} | {:>14.1} | {:>8.2} | {:>8.2} | {:>8.2} |",
            r.name,
            r.ops,
            if r.server_us.is_nan() {
                "-".to_owned()
            } else {
                format!("{:.1}", r.server_us)
            },
            r.cassandra_us,
            r.per_op[0],
            r.per_op[1],
            r.per_op[2]
        );
    }
}
