//! [`RedisClusterConfig`]: how to reach and use the cluster, checked before
//! connecting, and printed without node passwords.

use std::time::Duration;

/// How to reach and use the cluster. Its `Debug` hides the password of
/// every node URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisClusterConfig {
    /// Seed nodes (`redis://host:port`, `redis://:password@host:port`,
    /// `redis://user:password@host:port`). One reachable node is enough.
    pub nodes: Vec<String>,
    /// Prefix of every key, so several deployments (or tests) share a cluster.
    pub key_prefix: String,
    /// Longest wait for a TCP connection to a node.
    pub connect_timeout: Duration,
    /// Longest wait for one answer, retries included.
    pub command_timeout: Duration,
    /// Retries of a command after a connection error or redirection.
    pub retries: u32,
    /// Replicas that must acknowledge a rotation (`WAIT`); 0 turns it off.
    pub wait_replicas: u32,
    /// Longest `WAIT`.
    pub wait_timeout: Duration,
}

impl std::fmt::Debug for RedisClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|n| redact_url(n)).collect();
        f.debug_struct("RedisClusterConfig")
            .field("nodes", &nodes)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("retries", &self.retries)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout", &self.wait_timeout)
            .finish()
    }
}

/// `scheme://user:secret@host` as `scheme://user:***@host`; a URL without a
/// password as it is.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // The credentials end at the last '@' before the path.
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let credentials = authority
        .rfind('@')
        .and_then(|at| Some((at, authority[..at].split_once(':')?.0)));
    match credentials {
        Some((at, user)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

impl RedisClusterConfig {
    /// Defaults for the given seed nodes.
    pub fn new(nodes: Vec<String>) -> RedisClusterConfig {
        RedisClusterConfig {
            nodes,
            key_prefix: "portcullis".into(),
            connect_timeout: Duration::from_millis(1000),
            command_timeout: Duration::from_millis(1000),
            retries: 2,
            wait_replicas: 0,
            wait_timeout: Duration::from_millis(50),
        }
    }

    /// Checks the prefix: printable, no hash-tag braces, no spaces.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("no Redis Cluster nodes given".into());
        }
        let p = &self.key_prefix;
        if p.is_empty()
            || p.len() > 64
            || !p
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'{' && b != b'}')
        {
            return Err(format!(
                "Redis key prefix '{p}' must be 1-64 printable characters without braces or spaces"
            ));
        }
        Ok(())
    }
}
