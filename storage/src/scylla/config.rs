//! Settings of the ScyllaDB user store.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use scylla::statement::{Consistency, SerialConsistency};

/// Whether the keyspace uses tablets (ScyllaDB 6+). Lightweight transactions,
/// which email uniqueness needs, are not supported on tablet keyspaces by
/// every ScyllaDB release, so the default keyspace turns them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tablets {
    /// `AND tablets = {'enabled': false}` (vnodes; works with LWT everywhere).
    Off,
    /// `AND tablets = {'enabled': true}`.
    On,
    /// No `tablets` clause (Cassandra, ScyllaDB before 6).
    ServerDefault,
}

/// TLS to the ScyllaDB nodes (rustls).
#[derive(Clone, PartialEq, Eq)]
pub struct ScyllaTls {
    /// PEM file of the CA certificates that sign the nodes' certificates.
    pub ca_file: PathBuf,
    /// The DNS name the nodes' certificates carry. The driver connects to
    /// node IP addresses; without this, certificates must carry IP SANs.
    pub server_name: Option<String>,
    /// Client certificate chain (PEM), for mutual TLS.
    pub client_cert: Option<PathBuf>,
    /// Client private key (PEM), for mutual TLS.
    pub client_key: Option<PathBuf>,
}

impl fmt::Debug for ScyllaTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaTls")
            .field("ca_file", &self.ca_file)
            .field("server_name", &self.server_name)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key.as_ref().map(|_| "<path>"))
            .finish()
    }
}

/// Settings of the ScyllaDB user store.
#[derive(Clone, PartialEq, Eq)]
pub struct ScyllaConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Keyspace holding Portcullis' tables.
    pub keyspace: String,
    /// The local datacenter: requests go to its replicas only, and
    /// `LOCAL_*` consistencies count its replicas.
    pub local_dc: Option<String>,
    /// Username for password authentication.
    pub username: Option<String>,
    /// Password for password authentication. Never logged.
    pub password: Option<String>,
    /// TLS, when set.
    pub tls: Option<ScyllaTls>,
    /// Consistency of reads and plain writes (default `LOCAL_QUORUM`).
    pub consistency: Consistency,
    /// Serial consistency of lightweight transactions (default `LOCAL_SERIAL`).
    pub serial_consistency: SerialConsistency,
    /// Client-side limit on one request, retries included.
    pub request_timeout: Duration,
    /// Limit on opening one connection.
    pub connect_timeout: Duration,
    /// Delay after which an idempotent read is also sent to another replica;
    /// `None` turns speculative execution off.
    pub speculative_delay: Option<Duration>,
    /// Replication of the keyspace created by `migrate`: datacenter and
    /// replication factor (NetworkTopologyStrategy).
    pub replication: Vec<(String, u32)>,
    /// Tablets clause of the keyspace created by `migrate`.
    pub tablets: Tablets,
    /// How long a reservation of a new email (during an email change) lives
    /// if the change never completes.
    pub reservation_ttl: Duration,
}

impl fmt::Debug for ScyllaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScyllaConfig")
            .field("nodes", &self.nodes)
            .field("keyspace", &self.keyspace)
            .field("local_dc", &self.local_dc)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("consistency", &self.consistency)
            .field("serial_consistency", &self.serial_consistency)
            .field("request_timeout", &self.request_timeout)
            .field("speculative_delay", &self.speculative_delay)
            .field("replication", &self.replication)
            .field("tablets", &self.tablets)
            .finish_non_exhaustive()
    }
}

impl ScyllaConfig {
    /// Defaults for these contact points.
    pub fn new(nodes: Vec<String>) -> ScyllaConfig {
        ScyllaConfig {
            nodes,
            keyspace: "portcullis".into(),
            local_dc: None,
            username: None,
            password: None,
            tls: None,
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            speculative_delay: Some(Duration::from_millis(100)),
            replication: vec![("datacenter1".into(), 3)],
            tablets: Tablets::Off,
            reservation_ttl: Duration::from_secs(86_400),
        }
    }

    /// Checks what the driver would only reject later, or worse, accept.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("no ScyllaDB nodes given".into());
        }
        valid_name("keyspace", &self.keyspace)?;
        if self.replication.is_empty() {
            return Err("keyspace replication names no datacenter".into());
        }
        for (dc, rf) in &self.replication {
            if dc.is_empty()
                || !dc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return Err(format!("datacenter name '{dc}' is not valid"));
            }
            if *rf == 0 {
                return Err(format!("replication factor of '{dc}' must be at least 1"));
            }
        }
        if self.username.is_some() != self.password.is_some() {
            return Err("ScyllaDB username and password go together".into());
        }
        if let Some(tls) = &self.tls
            && tls.client_cert.is_some() != tls.client_key.is_some()
        {
            return Err(
                "a TLS client certificate needs its key, and the key its certificate".into(),
            );
        }
        if self.reservation_ttl < Duration::from_secs(60) {
            return Err("the email reservation TTL must be at least a minute".into());
        }
        Ok(())
    }
}

fn valid_name(what: &str, name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    if !first_ok
        || name.len() > 48
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!(
            "{what} '{name}' must be 1-48 characters of a-z, 0-9 and _, starting with a letter"
        ));
    }
    Ok(())
}

/// Parses a consistency level name (`local_quorum`, `quorum`, `one`, ...).
pub fn parse_consistency(v: &str) -> Result<Consistency, String> {
    Ok(match v.to_ascii_lowercase().as_str() {
        "any" => Consistency::Any,
        "one" => Consistency::One,
        "two" => Consistency::Two,
        "three" => Consistency::Three,
        "quorum" => Consistency::Quorum,
        "all" => Consistency::All,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "local_one" => Consistency::LocalOne,
        _ => {
            return Err(
                "expected local_quorum, quorum, each_quorum, all, local_one, one, two or three"
                    .into(),
            );
        }
    })
}

/// Parses a serial consistency name (`local_serial` or `serial`).
pub fn parse_serial_consistency(v: &str) -> Result<SerialConsistency, String> {
    match v.to_ascii_lowercase().as_str() {
        "local_serial" => Ok(SerialConsistency::LocalSerial),
        "serial" => Ok(SerialConsistency::Serial),
        _ => Err("expected local_serial or serial".into()),
    }
}

/// Parses `dc1:3,dc2:3` into datacenters and replication factors.
pub fn parse_replication(v: &str) -> Result<Vec<(String, u32)>, String> {
    let mut out = Vec::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (dc, rf) = part
            .split_once(':')
            .ok_or_else(|| format!("'{part}' is not DATACENTER:FACTOR"))?;
        let rf: u32 = rf
            .trim()
            .parse()
            .map_err(|_| format!("'{part}': the replication factor is not a number"))?;
        out.push((dc.trim().to_owned(), rf));
    }
    if out.is_empty() {
        return Err("expected DATACENTER:FACTOR[,DATACENTER:FACTOR...]".into());
    }
    Ok(out)
}

/// Parses `off`, `on` or `default`.
pub fn parse_tablets(v: &str) -> Result<Tablets, String> {
    match v {
        "off" => Ok(Tablets::Off),
        "on" => Ok(Tablets::On),
        "default" => Ok(Tablets::ServerDefault),
        _ => Err("expected off, on or default".into()),
    }
}
