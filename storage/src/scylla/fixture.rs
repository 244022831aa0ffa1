//! A real CQL node for tests and benchmarks: Apache Cassandra 5, whose jars
//! come from Maven Central (`mvn dependency:copy-dependencies`, cached), run
//! as a JVM on free loopback ports with a minimal `cassandra.yaml`.
//!
//! Cassandra speaks the CQL native protocol and the lightweight transactions
//! the ScyllaDB store relies on, so the store's checks run against it;
//! ScyllaDB's own extras (shard-aware routing, tablets) are what it does not
//! exercise. Every node is stopped by PID: when dropped, and, for the node
//! shared by a test binary ([`CassandraCluster::shared`]), by a watchdog shell
//! that kills it as soon as the test process is gone, however it ended.
//!
//! Needs `java` (17) and `mvn` on the PATH. The jars are cached in
//! `$PORTCULLIS_CASSANDRA_CACHE`, else `$XDG_CACHE_HOME/portcullis` or
//! `~/.cache/portcullis` (about 70 MB, fetched once).

// Test support: a failed step is a failed test, with a message saying why.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::ScyllaConfig;
use crate::redis::fixture::wait_until;
use crate::{StoreError, StoreResult};

/// The Cassandra release the fixture runs.
pub const CASSANDRA_VERSION: &str = "5.0.9";

/// The datacenter a fixture node belongs to (`SimpleSnitch`'s).
pub const DATACENTER: &str = "datacenter1";

/// JVM options Cassandra 5 needs on Java 17 (its `jvm17-server.options`).
const JVM17: &[&str] = &[
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
];

/// One Cassandra node of a [`CassandraCluster`].
#[derive(Debug)]
pub struct CassandraNode {
    /// Its loopback address (`127.0.0.<n>`).
    pub ip: String,
    /// Its CQL port.
    pub port: u16,
    storage: u16,
    jmx: u16,
    launches: AtomicUsize,
    dir: PathBuf,
    lib: PathBuf,
    pid_file: PathBuf,
    child: Mutex<Option<Child>>,
}

/// Running Cassandra nodes forming one cluster (datacenter [`DATACENTER`]),
/// each on its own loopback address with the same ports.
#[derive(Debug)]
pub struct CassandraCluster {
    /// Every node; the first is the seed.
    pub nodes: Vec<CassandraNode>,
    watchdog: Mutex<Option<Child>>,
    dir: Option<tempfile::TempDir>,
}

/// Where the jars are kept between runs.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PORTCULLIS_CASSANDRA_CACHE") {
        return PathBuf::from(d);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("portcullis")
}

/// The directory of Cassandra's jars, fetched from Maven Central the first
/// time (several processes at once: each fetches into its own directory and
/// the first rename wins).
pub fn jars() -> PathBuf {
    let lib = cache_dir()
        .join(format!("cassandra-{CASSANDRA_VERSION}"))
        .join("lib");
    if lib
        .join(format!("cassandra-all-{CASSANDRA_VERSION}.jar"))
        .exists()
    {
        return lib;
    }
    let parent = lib.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .unwrap();
    let pom = work.path().join("pom.xml");
    std::fs::write(
        &pom,
        format!(
            r#"<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.portcullis.test</groupId>
  <artifactId>cassandra-node</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>{CASSANDRA_VERSION}</version>
    </dependency>
  </dependencies>
</project>
"#
        ),
    )
    .unwrap();
    let fetched = work.path().join("lib");
    let out = Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", fetched.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run mvn to fetch Cassandra {CASSANDRA_VERSION}: {e}. \
                 Install Maven and Java 17 (apt-get install -y maven openjdk-17-jre-headless)"
            )
        });
    assert!(
        out.status.success(),
        "mvn could not fetch org.apache.cassandra:cassandra-all:{CASSANDRA_VERSION}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Another process may have finished first: then keep its copy.
    if std::fs::rename(&fetched, &lib).is_err() {
        assert!(
            lib.join(format!("cassandra-all-{CASSANDRA_VERSION}.jar"))
                .exists(),
            "cannot move the fetched jars to {}",
            lib.display()
        );
    }
    lib
}

/// A port free on every one of `ips`.
fn free_port(ips: &[String], taken: &[u16]) -> u16 {
    for _ in 0..1000 {
        let p = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if taken.contains(&p) {
            continue;
        }
        if ips
            .iter()
            .all(|ip| TcpListener::bind((ip.as_str(), p)).is_ok())
        {
            return p;
        }
    }
    panic!("no loopback port free on {ips:?}");
}

/// Ports shared by every node of a cluster (each on its own address).
struct Ports {
    cql: u16,
    storage: u16,
}

fn yaml(
    dir: &Path,
    ip: &str,
    ports: &Ports,
    seed: &str,
    token: Option<i64>,
    synced: bool,
) -> String {
    let d = dir.display();
    let (cql, storage) = (ports.cql, ports.storage);
    let tokens = match token {
        // Several nodes: one token each, evenly spaced, nothing to allocate.
        Some(t) => format!("num_tokens: 1\ninitial_token: {t}\n"),
        None => "num_tokens: 4\nallocate_tokens_for_local_replication_factor: 1\n".to_owned(),
    };
    let commitlog = if synced {
        "commitlog_sync: batch\n"
    } else {
        "commitlog_sync: periodic\ncommitlog_sync_period: 10000ms\n"
    };
    format!(
        "cluster_name: portcullis-test
{tokens}partitioner: org.apache.cassandra.dht.Murmur3Partitioner
auto_bootstrap: false
{commitlog}commitlog_directory: {d}/commitlog
data_file_directories:
  - {d}/data
saved_caches_directory: {d}/saved_caches
hints_directory: {d}/hints
cdc_raw_directory: {d}/cdc
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: \"{seed}:{storage}\"
listen_address: {ip}
rpc_address: {ip}
storage_port: {storage}
native_transport_port: {cql}
start_native_transport: true
endpoint_snitch: SimpleSnitch
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
auto_snapshot: false
snapshot_before_compaction: false
concurrent_reads: 8
concurrent_writes: 8
concurrent_counter_writes: 4
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 8MiB
"
    )
}

impl CassandraCluster {
    /// Starts one node and waits until it answers CQL (about 8 s).
    pub fn start() -> CassandraCluster {
        CassandraCluster::start_with(1)
    }

    /// One node that syncs its commit log before it acknowledges a write,
    /// for a test that kills it: a lone node is its own quorum, and with the
    /// periodic default Cassandra 5 lost acknowledged writes to SIGKILL here.
    /// (Slower under contention: nodes nobody kills, and clusters of several,
    /// whose durability is a quorum of replicas, keep the periodic default.)
    pub fn start_synced() -> CassandraCluster {
        CassandraCluster::launch(1, true)
    }

    /// Starts `n` nodes on 127.0.0.1 to 127.0.0.`n` and waits until each
    /// answers CQL and sees the others up.
    pub fn start_with(n: usize) -> CassandraCluster {
        CassandraCluster::launch(n, false)
    }

    fn launch(n: usize, synced: bool) -> CassandraCluster {
        assert!((1..=9).contains(&n));
        let lib = jars();
        let dir = tempfile::Builder::new()
            .prefix("portcullis-cassandra-")
            .tempdir()
            .unwrap();
        let ips: Vec<String> = (1..=n).map(|i| format!("127.0.0.{i}")).collect();
        let cql = free_port(&ips, &[]);
        let storage = free_port(&ips, &[cql]);
        let ports = Ports { cql, storage };
        let mut taken = vec![cql, storage];
        let pid_file = dir.path().join("pids");
        std::fs::write(&pid_file, "").unwrap();
        let mut nodes = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let jmx = free_port(&ips[..1], &taken);
            taken.push(jmx);
            let node_dir = dir.path().join(format!("node{}", i + 1));
            std::fs::create_dir_all(&node_dir).unwrap();
            let token = (n > 1).then(|| {
                let step = u64::MAX / n as u64;
                (i64::MIN as i128 + i as i128 * step as i128) as i64
            });
            std::fs::write(
                node_dir.join("cassandra.yaml"),
                yaml(&node_dir, ip, &ports, &ips[0], token, synced),
            )
            .unwrap();
            nodes.push(CassandraNode {
                ip: ip.clone(),
                port: cql,
                storage,
                jmx,
                launches: AtomicUsize::new(0),
                dir: node_dir,
                lib: lib.clone(),
                pid_file: pid_file.clone(),
                child: Mutex::new(None),
            });
        }
        let cluster = CassandraCluster {
            watchdog: Mutex::new(Some(watchdog(&pid_file, dir.path()))),
            nodes,
            dir: Some(dir),
        };
        // The seed first; the others may then join together (auto_bootstrap
        // is off: an empty cluster has nothing to stream).
        cluster.nodes[0].launch();
        cluster.nodes[0].wait_serving();
        for node in &cluster.nodes[1..] {
            node.launch();
        }
        for node in &cluster.nodes[1..] {
            node.wait_serving();
        }
        if n > 1 {
            cluster.wait_all_up(Duration::from_secs(120));
        }
        cluster
    }

    /// The one-node cluster shared by every test of this process (each test
    /// uses its own keyspace). Killed by a watchdog when the process ends.
    pub fn shared() -> &'static CassandraCluster {
        static SHARED: OnceLock<CassandraCluster> = OnceLock::new();
        SHARED.get_or_init(CassandraCluster::start)
    }

    /// The first node's contact point.
    pub fn contact_point(&self) -> String {
        self.nodes[0].contact_point()
    }

    /// Every node's contact point.
    pub fn contact_points(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(CassandraNode::contact_point)
            .collect()
    }

    /// Waits until every running node's log says it sees every other node up.
    pub fn wait_all_up(&self, timeout: Duration) {
        wait_until("every Cassandra node sees the others up", timeout, || {
            self.nodes.iter().filter(|n| n.pid().is_some()).all(|n| {
                let log = std::fs::read_to_string(n.log()).unwrap_or_default();
                self.nodes.iter().filter(|o| o.ip != n.ip).all(|o| {
                    // The last word on the peer is that it is up.
                    let peer = format!("InetAddress /{}:{}", o.ip, o.storage);
                    let up = log.rfind(&format!("{peer} is now UP"));
                    let down = log.rfind(&format!("{peer} is now DOWN"));
                    up.is_some() && up > down
                })
            })
        });
    }
}

impl CassandraNode {
    fn log(&self) -> PathBuf {
        self.dir.join("cassandra.log")
    }

    /// Starts the JVM (on its existing data, after a [`CassandraNode::kill`]).
    fn launch(&self) {
        let mut slot = self.child.lock().unwrap();
        assert!(slot.is_none(), "Cassandra node {} is running", self.ip);
        let conf = self.dir.join("cassandra.yaml");
        // A restart appends to the same log: remember where this life starts.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let child = Command::new("java")
            .args(["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-Xss512k"])
            .args(JVM17)
            .arg(format!("-Dcassandra.config=file://{}", conf.display()))
            .arg(format!("-Dcassandra.storagedir={}", self.dir.display()))
            .arg(format!("-Dcassandra.jmx.local.port={}", self.jmx))
            .arg("-Dcassandra-foreground=yes")
            .arg("-Dcassandra.skip_wait_for_gossip_to_settle=0")
            .arg("-Dcassandra.ring_delay_ms=100")
            .arg("-Dcassandra.superuser_setup_delay_ms=0")
            .arg("-Dcassandra.consistent.rangemovement=false")
            .arg("-cp")
            .arg(format!("{}/*", self.lib.display()))
            .arg("org.apache.cassandra.service.CassandraDaemon")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run java for Cassandra: {e}. Install Java 17 (openjdk-17-jre-headless)"
                )
            });
        // The watchdog reads the PIDs from this file when it fires.
        let mut pids = std::fs::read_to_string(&self.pid_file).unwrap_or_default();
        pids.push_str(&format!(" {}", child.id()));
        std::fs::write(&self.pid_file, pids).unwrap();
        *slot = Some(child);
        self.launches.fetch_add(1, Ordering::Relaxed);
    }

    /// Waits until this life of the node says "Startup complete" and its CQL
    /// port accepts connections.
    fn wait_serving(&self) {
        wait_until(
            &format!("Cassandra {} answers CQL on port {}", self.ip, self.port),
            Duration::from_secs(180),
            || {
                let running = self
                    .child
                    .lock()
                    .unwrap()
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_none());
                assert!(
                    running,
                    "Cassandra {} exited while starting: {}",
                    self.ip,
                    tail(&self.log(), 40)
                );
                let lives = std::fs::read_to_string(self.log())
                    .unwrap_or_default()
                    .matches("Startup complete")
                    .count();
                lives >= self.launches.load(Ordering::Relaxed)
                    && TcpStream::connect((self.ip.as_str(), self.port)).is_ok()
            },
        );
    }

    /// `ip:port` of its CQL listener.
    pub fn contact_point(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap().as_ref().map(Child::id)
    }

    /// Sends SIGKILL to the node and reaps it.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the node again on its data and ports, and waits until it
    /// answers CQL.
    pub fn restart(&self) {
        self.launch();
        self.wait_serving();
    }
}

/// The last `n` lines of a file.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A shell loop that kills the nodes (every PID the pid file lists) and
/// removes their data once the process that started them is gone.
fn watchdog(pid_file: &Path, dir: &Path) -> Child {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.5; done; kill -9 $(cat '{pids}') 2>/dev/null; rm -rf '{dir}'",
        parent = std::process::id(),
        pids = pid_file.display(),
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

impl Drop for CassandraCluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            n.kill();
        }
        if let Some(mut w) = self.watchdog.lock().unwrap().take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        drop(self.dir.take());
        let _ = std::io::stderr().flush();
    }
}

/// The CQL node tests run against, as `(contact point, datacenter)`: the one
/// `PORTCULLIS_TEST_SCYLLA` names (a ScyllaDB node, say; its datacenter in
/// `PORTCULLIS_TEST_SCYLLA_DC`), else this process's shared Cassandra node.
pub fn test_node() -> (String, String) {
    match std::env::var("PORTCULLIS_TEST_SCYLLA")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(node) => (
            node,
            std::env::var("PORTCULLIS_TEST_SCYLLA_DC").unwrap_or_else(|_| DATACENTER.into()),
        ),
        None => (
            CassandraCluster::shared().contact_point(),
            DATACENTER.to_owned(),
        ),
    }
}

/// A keyspace of one test's own on the test node, dropped with this value.
#[derive(Debug)]
pub struct Keyspace {
    /// The store's settings for it.
    pub config: ScyllaConfig,
}

static KEYSPACES: AtomicUsize = AtomicUsize::new(0);

impl Keyspace {
    /// Settings for a new, not yet created keyspace on the test node, named
    /// after `tag` (letters, digits, `_`), this process and a counter.
    pub fn unmigrated(tag: &str) -> Keyspace {
        let (node, dc) = test_node();
        let mut cfg = ScyllaConfig::new(vec![node]);
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(16)
            .collect();
        cfg.keyspace = format!(
            "pc_{tag}_{}_{}",
            std::process::id(),
            KEYSPACES.fetch_add(1, Ordering::Relaxed)
        )
        .to_ascii_lowercase();
        cfg.replication = vec![(dc.clone(), 1)];
        cfg.local_dc = Some(dc);
        // A JVM node on a busy 2-core machine: schema changes are slow.
        cfg.request_timeout = Duration::from_secs(10);
        Keyspace { config: cfg }
    }

    /// Settings for a new, not yet created keyspace named after `tag` on
    /// `cluster`, replicated `rf` times.
    pub fn unmigrated_on(cluster: &CassandraCluster, tag: &str, rf: u32) -> Keyspace {
        let mut ks = Keyspace::unmigrated(tag);
        ks.config.nodes = cluster.contact_points();
        ks.config.replication = vec![(DATACENTER.to_owned(), rf)];
        ks.config.local_dc = Some(DATACENTER.to_owned());
        ks
    }

    /// Runs one CQL statement on the keyspace's cluster (`{ks}` stands for
    /// the keyspace), as a test's own hand on the database.
    pub async fn execute(&self, cql: &str) -> StoreResult<()> {
        let session = super::session::open_session(&self.config).await?;
        session
            .query_unpaged(cql.replace("{ks}", &self.config.keyspace), ())
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(())
    }

    /// A new keyspace on the test node, migrated.
    pub async fn migrated(tag: &str) -> Keyspace {
        let ks = Keyspace::unmigrated(tag);
        super::migrate(&ks.config)
            .await
            .expect("migrate a fresh keyspace");
        ks
    }
}

impl Drop for Keyspace {
    fn drop(&mut self) {
        let cfg = self.config.clone();
        // Its own thread and runtime: this may run inside any runtime, or none.
        let drop_it = move || {
            std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    let _ = rt.block_on(super::migration::drop_keyspace(&cfg));
                }
            })
            .join()
        };
        let in_multi_thread_runtime = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let _ = if in_multi_thread_runtime {
            tokio::task::block_in_place(drop_it)
        } else {
            drop_it()
        };
    }
}
