//! A real Redis Cluster for tests and benchmarks: `redis-server` processes on
//! free loopback ports (3 masters + 3 replicas by default, `cluster-enabled
//! yes`), joined by `redis-cli --cluster create ... --cluster-yes`.
//!
//! Every process is stopped by PID: when the [`RedisCluster`] is dropped
//! (also while a failing test unwinds), and, for the cluster shared by a test
//! binary ([`RedisCluster::shared`]), by a watchdog process that kills them
//! as soon as the test process is gone, however it ended.

// Test support: a failed step is a failed test, with a message saying why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::RedisClusterConfig;

/// One `redis-server` process.
#[derive(Debug)]
pub struct Node {
    /// Its client port on 127.0.0.1 (the cluster bus is port + 10000).
    pub port: u16,
    child: Mutex<Option<Child>>,
    server: String,
    dir: std::path::PathBuf,
    pid_file: std::path::PathBuf,
}

impl Node {
    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    /// Sends SIGKILL to the process and reaps it.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn spawn(server: &str, port: u16, dir: &Path) -> Child {
        Command::new(server)
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", "1000"])
            .args(["--appendonly", "no"])
            .args(["--save", ""])
            .args(["--protected-mode", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {server}: {e}. Install it: apt-get install -y redis-server")
            })
    }

    /// Starts the node again on its port and directory (it rejoins the
    /// cluster from its `nodes.conf`; its data is gone: no persistence).
    pub fn restart(&self) {
        let mut slot = self.child.lock().unwrap();
        assert!(slot.is_none(), "node {} is still running", self.port);
        let child = Node::spawn(&self.server, self.port, &self.dir);
        // The watchdog reads the PIDs from this file when it fires.
        let mut pids = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        pids.push_str(&format!(" {}", child.id()));
        std::fs::write(&self.pid_file, pids).unwrap();
        *slot = Some(child);
        drop(slot);
        wait_until(
            &format!("restarted redis-server on port {} answers", self.port),
            Duration::from_secs(20),
            || command(self.port, &["PING"]).is_ok_and(|r| r == "PONG"),
        );
    }
}

/// A running Redis Cluster.
#[derive(Debug)]
pub struct RedisCluster {
    /// Every node, masters first as created.
    pub nodes: Vec<Node>,
    watchdog: Mutex<Option<Child>>,
    dir: Option<tempfile::TempDir>,
}

fn tool(name: &str) -> String {
    // Debian installs them here; fall back to PATH.
    for dir in ["/usr/bin", "/usr/local/bin"] {
        let p = format!("{dir}/{name}");
        if Path::new(&p).exists() {
            return p;
        }
    }
    name.to_owned()
}

/// A port `p` such that `p` and `p + 10000` (the cluster bus) are free.
fn free_port_pair(taken: &[u16]) -> u16 {
    for _ in 0..1000 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p > 55_000 || taken.contains(&p) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return p;
        }
    }
    panic!("no free loopback port pair for a Redis Cluster node");
}

/// Sends one command (inline RESP array) and reads one reply as text.
pub fn command(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.trim_end().to_owned();
    match line.as_bytes().first() {
        Some(b'+' | b':') => Ok(line[1..].to_owned()),
        Some(b'-') => Err(std::io::Error::other(line[1..].to_owned())),
        Some(b'$') => {
            let n: i64 = line[1..].parse().map_err(std::io::Error::other)?;
            if n < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0; usize::try_from(n).unwrap_or(0) + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(buf.len() - 2);
            Ok(String::from_utf8_lossy(&buf).into_owned())
        }
        _ => Err(std::io::Error::other(format!("unexpected reply {line}"))),
    }
}

/// Polls `ok` until it holds, or panics naming `what` after `timeout`
/// (shared with the Cassandra fixture).
#[allow(clippy::disallowed_methods)] // a fixture's real-time deadline
pub(crate) fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < timeout,
            "test fixture: timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl RedisCluster {
    /// Starts 3 masters with one replica each.
    pub fn start() -> RedisCluster {
        Self::start_with(3, 1)
    }

    /// Starts `masters` masters with `replicas` replicas each and waits until
    /// the cluster is healthy.
    pub fn start_with(masters: usize, replicas: usize) -> RedisCluster {
        let server = tool("redis-server");
        let cli = tool("redis-cli");
        let dir = tempfile::Builder::new()
            .prefix("portcullis-redis-")
            .tempdir()
            .unwrap();
        let total = masters * (1 + replicas);
        let mut ports = Vec::new();
        for _ in 0..total {
            let p = free_port_pair(&ports);
            ports.push(p);
        }
        let pid_file = dir.path().join("pids");
        let mut nodes = Vec::new();
        for &p in &ports {
            let node_dir = dir.path().join(p.to_string());
            std::fs::create_dir_all(&node_dir).unwrap();
            let child = Node::spawn(&server, p, &node_dir);
            nodes.push(Node {
                port: p,
                child: Mutex::new(Some(child)),
                server: server.clone(),
                dir: node_dir,
                pid_file: pid_file.clone(),
            });
        }
        let watchdog = Self::watchdog(&nodes, dir.path());
        let cluster = RedisCluster {
            nodes,
            watchdog: Mutex::new(Some(watchdog)),
            dir: Some(dir),
        };
        for n in &cluster.nodes {
            wait_until(
                &format!("redis-server on port {} answers", n.port),
                Duration::from_secs(20),
                || command(n.port, &["PING"]).is_ok_and(|r| r == "PONG"),
            );
        }
        let mut create = Command::new(&cli);
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cli}: {e}"));
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// The cluster shared by every test of this process (each test uses its
    /// own key prefix). Its processes are killed by a watchdog when the
    /// process ends.
    pub fn shared() -> &'static RedisCluster {
        static SHARED: OnceLock<RedisCluster> = OnceLock::new();
        SHARED.get_or_init(RedisCluster::start)
    }

    /// A shell loop that kills every node by PID (and removes the data) once
    /// the process that started them is gone.
    fn watchdog(nodes: &[Node], dir: &Path) -> Child {
        let pids: Vec<String> = nodes
            .iter()
            .filter_map(Node::pid)
            .map(|p| p.to_string())
            .collect();
        std::fs::write(dir.join("pids"), pids.join(" ")).unwrap();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 0.2; done; kill -9 $(cat '{dir}/pids') 2>/dev/null; rm -rf '{dir}'",
            parent = std::process::id(),
            dir = dir.display(),
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start the fixture's watchdog shell")
    }

    /// Waits until every running node reports `cluster_state:ok`, every slot
    /// is served, and every replica's link to its master is up.
    pub fn wait_healthy(&self, timeout: Duration) {
        for n in self.nodes.iter().filter(|n| n.pid().is_some()) {
            wait_until(
                &format!("node {} reports a healthy cluster", n.port),
                timeout,
                || {
                    command(n.port, &["CLUSTER", "INFO"]).is_ok_and(|i| {
                        i.contains("cluster_state:ok") && i.contains("cluster_slots_ok:16384")
                    }) && command(n.port, &["INFO", "replication"]).is_ok_and(|i| {
                        !i.contains("role:slave") || i.contains("master_link_status:up")
                    })
                },
            );
        }
    }

    /// Seed URLs (every node).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    /// A store configuration for this cluster with `prefix`.
    pub fn config(&self, prefix: &str) -> RedisClusterConfig {
        let mut c = RedisClusterConfig::new(self.urls());
        c.key_prefix = prefix.to_owned();
        c
    }

    /// A key prefix no other test of this process uses.
    pub fn unique_prefix(name: &str) -> String {
        static N: AtomicU64 = AtomicU64::new(0);
        format!(
            "t{}-{name}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The port of the master currently serving `key`'s slot.
    pub fn master_for_key(&self, key: &str) -> u16 {
        let live = self.nodes.iter().find(|n| n.pid().is_some()).unwrap();
        let slot: u16 = command(live.port, &["CLUSTER", "KEYSLOT", key])
            .unwrap()
            .parse()
            .unwrap();
        let nodes = command(live.port, &["CLUSTER", "NODES"]).unwrap();
        for line in nodes.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let port: u16 = f[1]
                .split(['@', ':'])
                .nth(1)
                .and_then(|p| p.parse().ok())
                .unwrap();
            for range in &f[8..] {
                let (a, b) = match range.split_once('-') {
                    Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
                    None => (range.parse(), range.parse()),
                };
                if let (Ok(a), Ok(b)) = (a, b)
                    && (a..=b).contains(&slot)
                {
                    return port;
                }
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// The node on `port`.
    pub fn node(&self, port: u16) -> &Node {
        self.nodes.iter().find(|n| n.port == port).unwrap()
    }

    /// PIDs of the running nodes (for CPU accounting from `/proc`).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(Node::pid).collect()
    }

    /// Kills every node (SIGKILL, by PID).
    pub fn stop_all(&self) {
        for n in &self.nodes {
            n.kill();
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop_all();
        if let Some(mut w) = self.watchdog.lock().unwrap().take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        drop(self.dir.take());
    }
}
