//! The real `portcullis` binary: crash durability, graceful shutdown, bad config.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::support::*;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

pub(crate) struct Proc {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) lines: Arc<Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on ephemeral ports and waits for its "listening" line.
fn spawn(data_dir: &std::path::Path) -> Proc {
    spawn_with(data_dir, &[])
}

/// [`spawn`] with more environment variables.
pub(crate) fn spawn_with(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Proc {
    let mut child = Command::new(BIN)
        .arg("serve")
        .envs(env.iter().copied())
        .env("PORTCULLIS_DATA_DIR", data_dir)
        .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_PASSWORD_HASH", "argon2id:m=64,t=1,p=1")
        .env("PORTCULLIS_IP_RATE_LIMIT", "off")
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("portcullis listening") {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                let _ = tx.send(v["api"].as_str().unwrap().parse::<SocketAddr>().unwrap());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not start");
    Proc { child, addr, lines }
}

fn signal(p: &Proc, sig: i32) {
    let pid = i32::try_from(p.child.id()).unwrap();
    // SAFETY: plain kill(2) on our own child's pid.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0);
}

#[test]
fn every_acknowledged_registration_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path());
    let c = Client { addr: p.addr };
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let acked = acked.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let email = format!("w{w}-{i}@example.com");
                    let r = std::panic::catch_unwind(|| {
                        c.post_json(
                            "/v1/auth/register",
                            &json!({"email": email, "password": "password-1"}),
                            None,
                        )
                    });
                    match r {
                        Ok(r) if r.status == 201 => acked.lock().unwrap().push(email),
                        // The kill interrupts some requests; those were never acknowledged.
                        _ => {}
                    }
                    i += 1;
                }
            })
        })
        .collect();
    while acked.lock().unwrap().len() < 200 {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&p, libc::SIGKILL);
    let _ = p.child.wait();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);
    drop(p);

    let p = spawn(dir.path());
    let c = Client { addr: p.addr };
    for email in &acked {
        let r = c.post_json(
            "/v1/auth/login",
            &json!({"email": email, "password": "password-1"}),
            None,
        );
        assert_eq!(
            r.status,
            200,
            "{email} was acknowledged but is gone: {}",
            r.text()
        );
    }
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = spawn(dir.path());
    let c = Client { addr: p.addr };
    c.post_json(
        "/v1/auth/register",
        &json!({"email": "term@example.com", "password": "password-1"}),
        None,
    );
    signal(&p, libc::SIGTERM);
    let status = p.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let lines = p.lines.lock().unwrap().join("\n");
    assert!(
        lines.contains("shutting down") && lines.contains("engine stopped"),
        "{lines}"
    );
    // Every log line is one JSON object.
    for line in lines.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }
    // The data survives a clean restart.
    let p = spawn(dir.path());
    let c = Client { addr: p.addr };
    let r = c.post_json(
        "/v1/auth/login",
        &json!({"email": "term@example.com", "password": "password-1"}),
        None,
    );
    assert_eq!(r.status, 200);
}

#[test]
fn bad_configuration_exits_non_zero_with_one_clear_line() {
    for (key, value, needle) in [
        ("PORTCULLIS_LISTEN", "not-an-address", "PORTCULLIS_LISTEN"),
        (
            "PORTCULLIS_PASSWORD_HASH",
            "md5",
            "PORTCULLIS_PASSWORD_HASH",
        ),
        (
            "PORTCULLIS_TRUSTED_PROXIES",
            "10.0.0.0/99",
            "PORTCULLIS_TRUSTED_PROXIES",
        ),
        (
            "PORTCULLIS_IP_RATE_LIMIT",
            "fast",
            "PORTCULLIS_IP_RATE_LIMIT",
        ),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .env(key, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{key}={value}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle) && err.contains(value), "{err}");
    }
    let out = Command::new(BIN)
        .args(["serve", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr)
            .unwrap()
            .trim_end()
            .lines()
            .count(),
        1
    );
    // A port in use is a clear error too.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("serve")
        .env("PORTCULLIS_DATA_DIR", dir.path())
        .env("PORTCULLIS_LISTEN", taken.local_addr().unwrap().to_string())
        .env("PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:0")
        .env("PORTCULLIS_LOG_FORMAT", "text")
        .env("PORTCULLIS_LOG", "off")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("cannot listen on") && err.contains("PORTCULLIS_LISTEN"),
        "{err}"
    );
    // --help lists the settings and their variables.
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for var in [
        "PORTCULLIS_DATA_DIR",
        "PORTCULLIS_LISTEN",
        "PORTCULLIS_ADMIN_LISTEN",
        "PORTCULLIS_ISSUER",
        "PORTCULLIS_REFRESH_REUSE_GRACE_MS",
        "PORTCULLIS_TRUSTED_PROXIES",
        "PORTCULLIS_IP_RATE_LIMIT",
        "PORTCULLIS_PASSWORD_HASH",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[test]
fn migrate_print_writes_the_schema_without_connecting() {
    let out = Command::new(BIN)
        .args([
            "migrate",
            "--print",
            "--scylla-keyspace",
            "auth",
            "--scylla-replication",
            "dc1:3,dc2:3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let cql = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "CREATE KEYSPACE IF NOT EXISTS auth WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}",
        "CREATE TABLE IF NOT EXISTS auth.users (",
        "CREATE TABLE IF NOT EXISTS auth.users_by_email (",
        "CREATE TABLE IF NOT EXISTS auth.schema_migrations (",
        "IF NOT EXISTS USING TTL ?",
    ] {
        assert!(cql.contains(needle), "missing {needle:?} in\n{cql}");
    }
}

#[test]
fn scylla_settings_fail_clearly_and_an_unreachable_cluster_is_waited_for() {
    let out = Command::new(BIN).arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("PORTCULLIS_SCYLLA_NODES"), "{err}");

    let out = Command::new(BIN)
        .args(["serve", "--user-store", "scylla"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--scylla-nodes")
    );

    // Nothing listens on port 1: after the connect limit the server serves
    // anyway, alive but not ready, and keeps trying in the background.
    let dir = tempfile::tempdir().unwrap();
    let p = spawn_with(
        dir.path(),
        &[
            ("PORTCULLIS_USER_STORE", "scylla"),
            ("PORTCULLIS_SCYLLA_NODES", "127.0.0.1:1"),
            ("PORTCULLIS_DATA_KEY", TEST_DATA_KEY),
            ("PORTCULLIS_STORE_CONNECT_TIMEOUT", "1s"),
        ],
    );
    let c = Client { addr: p.addr };
    assert_eq!(c.get("/healthz", None).status, 200);
    let ready = c.get("/readyz", None);
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.header("retry-after"), Some("1"));
    assert_eq!(ready.json()["checks"]["user_store"], false);
    let r = c.post_json(
        "/v1/auth/register",
        &json!({"email": "early@example.com", "password": "correct horse battery"}),
        None,
    );
    r.problem(503, "unavailable");
    assert!(r.header("retry-after").is_some());
    std::thread::sleep(Duration::from_millis(600));
    let log = p.lines.lock().unwrap().join("\n");
    assert!(log.contains("store not reachable yet; retrying"), "{log}");
    assert!(log.contains("not ready until it connects"), "{log}");
}

fn eml_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("mail"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn mail_queued_before_a_sigkill_is_delivered_exactly_once_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    // First life: the SMTP relay is down, so the message stays queued
    // (a transient failure, retried with backoff) when the process dies.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let mut p = spawn_with(
        dir.path(),
        &[
            ("PORTCULLIS_MAIL_TRANSPORT", "smtp"),
            ("PORTCULLIS_SMTP_HOST", "127.0.0.1"),
            ("PORTCULLIS_SMTP_PORT", &dead),
            ("PORTCULLIS_SMTP_SECURITY", "none"),
            ("PORTCULLIS_SMTP_TIMEOUT", "1s"),
        ],
    );
    let c = Client { addr: p.addr };
    let r = c.post_json(
        "/v1/auth/register",
        &json!({"email": "durable@example.com", "password": "password-1"}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let access = s(&r.json()["access_token"]).to_owned();
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    let mut attempted = false;
    for _ in 0..200 {
        if p.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("mail delivery failed; retrying later"))
        {
            attempted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(attempted, "the first life tried and failed to deliver");
    signal(&p, libc::SIGKILL);
    let _ = p.child.wait();
    drop(p);
    assert!(eml_files(dir.path()).is_empty());

    // Second life: the file transport delivers the queued message, once.
    let p = spawn(dir.path());
    let mut files = Vec::new();
    for _ in 0..400 {
        files = eml_files(dir.path());
        if !files.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(files.len(), 1, "delivered after the restart");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(eml_files(dir.path()).len(), 1, "exactly once");
    let mail = decode_quoted_printable(&std::fs::read_to_string(&files[0]).unwrap());
    assert!(mail.contains("To: durable@example.com"), "{mail}");
    // It is the message of the change that happened: its token works.
    let c = Client { addr: p.addr };
    let r = c.post_json(
        "/v1/email/verification/confirm",
        &json!({"token": token_in(&mail, "pcv_")}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Every directory (0700) and file (0600) under `root`, including `root`,
/// that is open to the group or others, with its mode.
fn not_owner_only(root: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut open = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let wanted = if meta.is_dir() { 0o700 } else { 0o600 };
        if mode != wanted || !(meta.is_dir() || meta.is_file()) {
            open.push((path.clone(), mode));
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&path).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
    }
    open
}

/// The data directory holds password hashes, sessions, keys and, in `mail/`,
/// messages with live reset tokens: nothing in it may be readable by another
/// local user, whatever the umask the server was started with.
#[test]
fn everything_the_server_writes_is_owner_only() {
    let root = tempfile::tempdir().unwrap();
    // Not there yet: the server creates it, as on a first start.
    let data = root.path().join("data");
    let mut p = spawn(&data);
    let c = Client { addr: p.addr };
    let r = c.post_json(
        "/v1/auth/register",
        &json!({"email": "modes@example.com", "password": "password-1"}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = c.post_json(
        "/v1/password/forgot",
        &json!({"email": "modes@example.com"}),
        None,
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let mut mails = Vec::new();
    for _ in 0..400 {
        mails = eml_files(&data);
        if !mails.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(!mails.is_empty(), "the reset message was not written");
    signal(&p, libc::SIGTERM);
    assert!(p.child.wait().unwrap().success());
    let open = not_owner_only(&data);
    assert!(
        open.is_empty(),
        "open to other users: {:?}",
        open.iter()
            .map(|(p, m)| format!("{}/ {m:o}", p.strip_prefix(&data).unwrap_or(p).display()))
            .collect::<Vec<_>>()
    );
}
