//! The server under test (the real `portcullis` binary in a child process,
//! on a temporary data directory) and keep-alive HTTP/1.1 connections to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) api: SocketAddr,
    pub(crate) admin: SocketAddr,
    pub(crate) pid: u32,
    pub(crate) _dir: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start(bin: &PathBuf, hash: &str, extra: &[(&str, &str)]) -> Result<Server> {
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .env("PORTCULLIS_DATA_DIR", dir.path())
            .env("PORTCULLIS_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_ADMIN_LISTEN", "127.0.0.1:0")
            .env("PORTCULLIS_PASSWORD_HASH", hash)
            .env("PORTCULLIS_IP_RATE_LIMIT", "off")
            .env("PORTCULLIS_LOG", "warn,portcullis=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("portcullis listening")
                    && let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(api) = v["api"].as_str().and_then(|a| a.parse::<SocketAddr>().ok())
                    && let Some(admin) = v["admin"]
                        .as_str()
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                {
                    let _ = tx.send((api, admin));
                }
            }
        });
        let (api, admin) = rx
            .recv_timeout(Duration::from_secs(60))
            .context("server did not start")?;
        let pid = child.id();
        Ok(Server {
            child,
            api,
            admin,
            pid,
            _dir: dir,
        })
    }
}

impl Server {
    /// Waits until `/readyz` answers 200: a server with a shared store may
    /// listen before it has connected to it.
    pub(crate) fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut conn = Conn::open(self.admin);
            if conn.call(&request("GET", "/readyz", None, None)).0 == 200 {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the server was not ready within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One keep-alive connection.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        Conn {
            stream,
            buf: Vec::with_capacity(8192),
        }
    }

    pub(crate) fn call(&mut self, req: &[u8]) -> (u16, Vec<u8>) {
        self.stream.write_all(req).expect("write");
        self.buf.clear();
        let mut chunk = [0u8; 8192];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(n)) = r.parse(&self.buf) {
                let status = r.code.unwrap_or(0);
                let len: usize = r
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                    .unwrap_or(0);
                while self.buf.len() < n + len {
                    let k = self.stream.read(&mut chunk).expect("read");
                    assert!(k > 0, "server closed the connection");
                    self.buf.extend_from_slice(&chunk[..k]);
                }
                return (status, self.buf[n..n + len].to_vec());
            }
            let k = self.stream.read(&mut chunk).expect("read");
            assert!(k > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..k]);
        }
    }
}

pub(crate) fn request(
    method: &str,
    path: &str,
    body: Option<&Value>,
    bearer: Option<&str>,
) -> Vec<u8> {
    let body = body.map(Value::to_string);
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
    if let Some(t) = bearer {
        r.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = &body {
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    r.push_str("\r\n");
    if let Some(b) = body {
        r.push_str(&b);
    }
    r.into_bytes()
}
