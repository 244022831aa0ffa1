//! A test server and a small blocking HTTP client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use portcullis_edge::config::EdgeConfig;
use portcullis_edge::config::{Config, Flags};
use portcullis_engine::clock::ManualClock;
use portcullis_engine::config::{Secret, TokenStoreConfig, UserStoreConfig};
use portcullis_engine::hashpool::HashScheme;
use portcullis_engine::{Engine, EngineConfig};
use portcullis_storage::UserStore;
use portcullis_storage::redis::RedisClusterStore;
use portcullis_storage::redis::fixture::RedisCluster;
pub use portcullis_storage::scylla::fixture::Keyspace;
use serde_json::{Value, json};

/// Cheap hashing for tests that are not about hashing.
pub const CHEAP: HashScheme = HashScheme::Argon2id { m: 64, t: 1, p: 1 };

/// The stores a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stores {
    /// The embedded default (users and tokens in the data directory).
    Embedded,
    /// Users embedded, tokens in the Redis Cluster shared by this test
    /// process (own key prefix per server).
    RedisCluster,
    /// The production shape: users in a real CQL node (this process's Apache
    /// Cassandra, a keyspace of the server's own, migrated), tokens in the
    /// shared Redis Cluster.
    Scylla,
}

/// The data key of test servers whose users are in ScyllaDB (which needs one).
pub const TEST_DATA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

impl Stores {
    /// The token store's configuration.
    pub fn tokens(self, name: &str) -> TokenStoreConfig {
        match self {
            Stores::Embedded => TokenStoreConfig::Embedded,
            Stores::RedisCluster | Stores::Scylla => TokenStoreConfig::RedisCluster(
                RedisCluster::shared().config(&RedisCluster::unique_prefix(name)),
            ),
        }
    }

    /// A migrated keyspace of its own, for [`Stores::Scylla`].
    pub fn keyspace(self, name: &str) -> Option<Keyspace> {
        (self == Stores::Scylla).then(|| block_on(Keyspace::migrated(name)))
    }

    /// Points `engine` at these stores (`keyspace` from [`Stores::keyspace`]).
    pub fn apply(self, name: &str, engine: &mut EngineConfig, keyspace: Option<&Keyspace>) {
        engine.token_store = self.tokens(name);
        if let Some(ks) = keyspace {
            engine.user_store = UserStoreConfig::Scylla(Box::new(ks.config.clone()));
            engine.account.data_key = Some(Secret::new(TEST_DATA_KEY));
        }
    }
}

/// Runs `f` to completion on a runtime of its own (tests outside tokio).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Runs each named test function (taking a [`Stores`]) once per store
/// combination, as `embedded::<name>`, `redis_cluster::<name>` and
/// `scylla::<name>`.
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $name() { super::$name(crate::support::Stores::Embedded) } )*
        }
        mod redis_cluster {
            $( #[test] fn $name() { super::$name(crate::support::Stores::RedisCluster) } )*
        }
        mod scylla {
            $( #[test] fn $name() { super::$name(crate::support::Stores::Scylla) } )*
        }
    };
}
pub(crate) use on_every_store;

pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub clock: Arc<ManualClock>,
    rt: Option<tokio::runtime::Runtime>,
    running: Option<portcullis_edge::Running>,
    _dir: tempfile::TempDir,
    /// The server's ScyllaDB keyspace, dropped after the server stops.
    keyspace: Option<Keyspace>,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(|_, _| {})
    }

    /// A server on `stores`.
    pub fn on(stores: Stores) -> TestServer {
        TestServer::on_with(stores, |_, _| {})
    }

    /// A server on `stores`, with more settings changed.
    pub fn on_with(
        stores: Stores,
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
    ) -> TestServer {
        let keyspace = stores.keyspace("http");
        let mut srv = TestServer::with(|engine, edge| {
            stores.apply("http", engine, keyspace.as_ref());
            tweak(engine, edge);
        });
        srv.keyspace = keyspace;
        srv
    }

    pub fn with(tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig)) -> TestServer {
        TestServer::build(tweak, None)
    }

    /// A server on the data directory of an earlier one (see [`TestServer::stop`]).
    pub fn reopen(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
    ) -> TestServer {
        TestServer::build_in(dir, tweak, None, None)
    }

    /// A server answering on `api`, a listener bound beforehand (for
    /// settings that must name the server's own address).
    pub fn listening_on(
        api: std::net::TcpListener,
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
    ) -> TestServer {
        TestServer::build_in(tempfile::tempdir().unwrap(), tweak, None, Some(api))
    }

    /// Stops the server gracefully and hands back its data directory.
    pub fn stop(mut self) -> tempfile::TempDir {
        if let (Some(rt), Some(running)) = (self.rt.take(), self.running.take()) {
            rt.block_on(running.shutdown(Duration::from_secs(2)));
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self._dir, dir)
    }

    /// One of several pods: its token store is `tokens` (a Redis Cluster),
    /// its users are `users`, shared with the other pods (as ScyllaDB would be).
    pub fn pod(
        users: Arc<dyn UserStore>,
        tokens: TokenStoreConfig,
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
    ) -> TestServer {
        TestServer::build(
            |engine, edge| {
                engine.token_store = tokens;
                tweak(engine, edge);
            },
            Some(users),
        )
    }

    /// [`TestServer::pod`], answering on `api`, a listener bound beforehand.
    pub fn pod_listening_on(
        users: Arc<dyn UserStore>,
        tokens: TokenStoreConfig,
        api: std::net::TcpListener,
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
    ) -> TestServer {
        TestServer::build_in(
            tempfile::tempdir().unwrap(),
            |engine, edge| {
                engine.token_store = tokens;
                tweak(engine, edge);
            },
            Some(users),
            Some(api),
        )
    }

    fn build(
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
        users: Option<Arc<dyn UserStore>>,
    ) -> TestServer {
        TestServer::build_in(tempfile::tempdir().unwrap(), tweak, users, None)
    }

    fn build_in(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
        users: Option<Arc<dyn UserStore>>,
        api: Option<std::net::TcpListener>,
    ) -> TestServer {
        // Warnings and errors go to the test's captured output, shown when it fails.
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let mut cfg = Config::resolve(&Flags::new(), &std::collections::HashMap::new()).unwrap();
        cfg.engine.data_dir = dir.path().to_owned();
        cfg.engine.password_hash = CHEAP;
        cfg.engine.shards = 4;
        cfg.engine.hash_threads = 2;
        cfg.edge.ip_rate_limit = "off".parse().unwrap();
        tweak(&mut cfg.engine, &mut cfg.edge);
        cfg.engine.shared_rate_limit = cfg.edge.ip_rate_limit.shared();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let clock = ManualClock::starting_now();
        let engine = match users {
            None => {
                // A server reopening the data directory of one just stopped
                // may find it still locked for a moment: connections the
                // stopped server was closing can hold its store briefly.
                let mut tries = 0;
                loop {
                    match rt.block_on(Engine::start(
                        cfg.engine.clone(),
                        clock.clone(),
                        rt.handle().clone(),
                    )) {
                        Ok(e) => break e,
                        Err(e) if e.to_string().contains("in use") && tries < 100 => {
                            tries += 1;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        Err(e) => panic!("the engine did not start: {e}"),
                    }
                }
            }
            Some(users) => {
                let TokenStoreConfig::RedisCluster(rc) = cfg.engine.token_store.clone() else {
                    panic!("pods share a Redis Cluster token store");
                };
                let tokens = rt.block_on(RedisClusterStore::connect(rc)).unwrap();
                rt.block_on(Engine::start_with_stores(
                    cfg.engine,
                    clock.clone(),
                    rt.handle().clone(),
                    users,
                    Arc::new(tokens),
                ))
                .unwrap()
            }
        };
        let api = api.unwrap_or_else(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let metrics = portcullis_edge::telemetry::install_metrics().ok();
        let running = portcullis_edge::serve(engine, api, admin, &cfg.edge, metrics).unwrap();
        TestServer {
            addr: running.api_addr(),
            admin: running.admin_addr(),
            clock,
            rt: Some(rt),
            running: Some(running),
            _dir: dir,
            keyspace: None,
        }
    }

    pub fn client(&self) -> Client {
        Client { addr: self.addr }
    }

    /// The server's data directory (the file mailer writes to `mail/` in it).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Waits (up to 5 s) for a new `.eml` file to `to` containing `needle`
    /// beyond the `seen` ones, and returns its decoded text (other messages
    /// to `to` may arrive in any order meanwhile).
    pub fn mail_containing(&self, to: &str, needle: &str, seen: &mut Vec<String>) -> String {
        let dir = self.data_dir().join("mail");
        for _ in 0..200 {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries {
                    let e = e.unwrap();
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.ends_with(".eml") || seen.contains(&name) {
                        continue;
                    }
                    let text = decode_quoted_printable(&std::fs::read_to_string(e.path()).unwrap());
                    if text.contains(&format!("To: {to}")) && text.contains(needle) {
                        seen.push(name);
                        return text;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no new message to {to} with {needle:?} within 5 s");
    }

    /// Waits (up to 5 s) for a new `.eml` file to `to` beyond the `seen`
    /// ones, and returns its decoded text.
    pub fn next_mail(&self, to: &str, seen: &mut Vec<String>) -> String {
        let dir = self.data_dir().join("mail");
        for _ in 0..200 {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for e in entries {
                    let e = e.unwrap();
                    let name = e.file_name().to_string_lossy().into_owned();
                    if !name.ends_with(".eml") || seen.contains(&name) {
                        continue;
                    }
                    let text = decode_quoted_printable(&std::fs::read_to_string(e.path()).unwrap());
                    if text.contains(&format!("To: {to}")) {
                        seen.push(name);
                        return text;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("no new message to {to} within 5 s");
    }

    /// Registers a user and returns (user, tokens) from the 201 body.
    pub fn register(&self, email: &str, password: &str) -> Value {
        let r = self.client().post_json(
            "/v1/auth/register",
            &json!({"email": email, "password": password}),
            None,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    pub fn login(&self, email: &str, password: &str) -> Resp {
        self.client().post_json(
            "/v1/auth/login",
            &json!({"email": email, "password": password}),
            None,
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let (Some(rt), Some(running)) = (self.rt.take(), self.running.take()) {
            rt.block_on(running.shutdown(Duration::from_secs(2)));
            rt.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a problem+json answer with this status and code; returns the document.
    pub fn problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        let doc = self.json();
        assert_eq!(doc["code"], code, "{doc}");
        assert_eq!(doc["status"], status);
        assert!(
            doc["title"].is_string() && doc["detail"].is_string() && doc["type"].is_string(),
            "{doc}"
        );
        assert_eq!(doc["request_id"].as_str(), self.header("x-request-id"));
        let text = self.text();
        for leak in [
            "panicked",
            "src/",
            "Error {",
            "StoreError",
            "fjall",
            "backtrace",
        ] {
            assert!(!text.contains(leak), "internal detail leaked: {text}");
        }
        doc
    }
}

/// Reads one response from `stream` (Content-Length framing, or none for 204/HEAD).
pub fn read_response(stream: &mut TcpStream, head_only: bool) -> Option<Resp> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut r = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = r.parse(&buf) {
            let status = r.code.unwrap();
            let hs: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_owned(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = hs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.parse().unwrap());
            let len = if head_only || status == 204 || status == 100 {
                0
            } else {
                len
            };
            while buf.len() < n + len {
                let k = stream.read(&mut chunk).ok()?;
                if k == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..k]);
            }
            let body = buf[n..n + len].to_vec();
            // Keep any bytes of a following response for the next call.
            let rest = buf.split_off(n + len);
            PENDING.with(|p| p.borrow_mut().extend(rest));
            return Some(Resp {
                status,
                headers: hs,
                body,
            });
        }
        let pending = PENDING.with(|p| std::mem::take(&mut *p.borrow_mut()));
        if !pending.is_empty() {
            buf.extend(pending);
            continue;
        }
        let k = stream.read(&mut chunk).ok()?;
        if k == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

thread_local! {
    // Test-client side only (plain threads, not coroutines).
    static PENDING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Sends raw bytes on a new connection and reads one response.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> (Option<Resp>, TcpStream) {
    PENDING.with(|p| p.borrow_mut().clear());
    let mut s = TcpStream::connect(addr).unwrap();
    // Long enough for a request that waits out a dead database node (store
    // timeouts, then a read-back); a hung server still fails the test.
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(bytes).unwrap();
    let r = read_response(&mut s, false);
    (r, s)
}

/// Whether the server closed `s` (reads EOF or a reset).
pub fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

#[derive(Clone, Copy)]
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            req.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        if let Some(b) = body {
            bytes.extend_from_slice(b);
        }
        raw(self.addr, &bytes).0.expect("no response")
    }

    pub fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        self.request("GET", path, &headers, None)
    }

    pub fn post_json(&self, path: &str, body: &Value, bearer: Option<&str>) -> Resp {
        self.send_json("POST", path, body, bearer)
    }

    pub fn send_json(&self, method: &str, path: &str, body: &Value, bearer: Option<&str>) -> Resp {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        self.request(method, path, &headers, Some(body.to_string().as_bytes()))
    }

    /// A JSON POST as the client at `ip`, behind a proxy the server trusts
    /// (the test server must trust 127.0.0.1).
    pub fn post_json_from(&self, ip: &str, path: &str, body: &Value, bearer: Option<&str>) -> Resp {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![
            ("Content-Type", "application/json"),
            ("X-Forwarded-For", ip),
        ];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        self.request("POST", path, &headers, Some(body.to_string().as_bytes()))
    }

    pub fn post_empty(&self, path: &str, bearer: Option<&str>) -> Resp {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        self.request("POST", path, &headers, None)
    }
}

pub fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Undoes quoted-printable (soft line breaks and `=XX`), as mail bodies are
/// written; harmless on headers and 7-bit text.
pub fn decode_quoted_printable(s: &str) -> String {
    let joined = s.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The single-use token with `prefix` in a mailed link (`token=<prefix>...`).
pub fn token_in(mail: &str, prefix: &str) -> String {
    let start = mail
        .find(&format!("token={prefix}"))
        .unwrap_or_else(|| panic!("no token={prefix} link in {mail}"))
        + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect()
}

/// Where browser tests write their screenshots (`target/tmp/browser`).
pub fn browser_output_dir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a browser script of `tests/fixtures/browser` with `env`; its last
/// line of output, as JSON. Debian's chromium must be installed (./test.sh
/// installs it).
pub fn run_browser_script(script: &str, env: &[(&str, String)]) -> Value {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is not installed (./test.sh installs it)"
    );
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/browser");
    let mut cmd = std::process::Command::new("node");
    cmd.arg("--experimental-websocket")
        .arg(script)
        .current_dir(&fixtures);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let run = cmd.output().expect("node runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}
