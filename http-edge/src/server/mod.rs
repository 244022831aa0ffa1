//! The HTTP/1.1 server: `may` coroutines over `may::net`, framing with
//! `httparse`.
//!
//! This is `may_minihttp`'s shape (a coroutine per connection, pipelined
//! requests answered in one write) rebuilt because the published
//! `may_minihttp` 0.1.11 cannot meet the edge's contract: it drops requests
//! with more than 16 headers without an answer, takes response header values
//! only as `&'static str` (so per-request values would leak), panics on a
//! non-numeric `Content-Length`, and gives handlers no way to close a
//! connection after a framing error. See ARCHITECTURE.md.

mod conn;
mod date;
pub mod parse;
pub mod response;

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpStream as StdTcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portcullis_engine::clock::{SharedClock, Stopwatch};

pub use parse::FrameError;
pub use response::{Body, Response};

/// A framed request, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Request<'a> {
    /// Method (`HEAD` is presented as `GET`; the body is then not sent).
    pub method: &'a str,
    /// Path, without the query.
    pub path: &'a str,
    /// Query string, without `?` (empty when none).
    pub query: &'a str,
    /// Header fields.
    pub headers: &'a [httparse::Header<'a>],
    /// The complete body.
    pub body: &'a [u8],
    /// The TCP peer.
    pub peer: SocketAddr,
}

impl Request<'_> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every header named `name`, in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// A response with the request id to send along.
#[derive(Debug)]
pub struct Handled {
    /// The response.
    pub response: Response,
    /// Value of `X-Request-Id`.
    pub request_id: String,
}

/// What serves requests. Called on may coroutines: it may park the
/// coroutine (the engine bridge does), and must not keep thread-local state
/// across such a park, since the coroutine may resume on another thread.
pub trait Handler: Send + Sync + 'static {
    /// Answers a request.
    fn handle(&self, req: &Request<'_>) -> Handled;
    /// Answers a request that could not be framed.
    fn reject(&self, error: FrameError) -> Handled;
    /// Answers a request that did not arrive in time.
    fn timeout(&self) -> Handled;
    /// Answers a connection refused because too many are open.
    fn overloaded(&self) -> Handled;
}

/// Connection limits and timeouts. Its `Default` is the defaults of the
/// settings (`crate::config`).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Open connections at most; beyond, new ones get a 503 and are closed.
    pub max_connections: usize,
    /// Open connections per TCP peer address (IPv6: per /64) at most, 0 for
    /// no limit; beyond, new ones get a 503 and are closed. The peer is
    /// counted, not the address forwarding headers name: no request has been
    /// framed yet when a connection is accepted.
    pub max_connections_per_ip: usize,
    /// How long an idle keep-alive connection stays open.
    pub keepalive_timeout: Duration,
    /// How long a started request may take to arrive completely.
    pub request_timeout: Duration,
    /// How long a response write may block.
    pub write_timeout: Duration,
}

struct ConnEntry {
    stream: StdTcpStream,
    busy: Arc<AtomicBool>,
    /// The peer's key in `Registry::per_ip`.
    peer: IpAddr,
}

/// The open connections, and how many each peer address holds.
#[derive(Default)]
struct Registry {
    conns: HashMap<u64, ConnEntry>,
    per_ip: HashMap<IpAddr, usize>,
}

/// Which connection limit refused a connection (the `limit` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Total,
    PerIp,
}

impl Registry {
    /// Registers connection `id` from `peer`, or says which limit refuses it.
    fn admit(&mut self, id: u64, entry: ConnEntry, cfg: &ServerConfig) -> Result<(), Refused> {
        if self.conns.len() >= cfg.max_connections {
            return Err(Refused::Total);
        }
        let held = self.per_ip.get(&entry.peer).copied().unwrap_or(0);
        if cfg.max_connections_per_ip > 0 && held >= cfg.max_connections_per_ip {
            return Err(Refused::PerIp);
        }
        self.per_ip.insert(entry.peer, held + 1);
        self.conns.insert(id, entry);
        Ok(())
    }

    /// Forgets connection `id`.
    fn release(&mut self, id: u64) {
        let Some(entry) = self.conns.remove(&id) else {
            return;
        };
        match self.per_ip.get_mut(&entry.peer) {
            Some(held) if *held > 1 => *held -= 1,
            _ => {
                self.per_ip.remove(&entry.peer);
            }
        }
    }
}

/// The key a peer's connections are counted under: the address, IPv6 by
/// /64 (one host usually holds a whole /64), as the rate limiter keys.
fn peer_key(peer: SocketAddr) -> IpAddr {
    portcullis_engine::domain::rate_limit_key(peer.ip())
}

/// State shared by the acceptor, the connections and the handle.
pub(crate) struct Shared {
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    conns: Mutex<Registry>,
    next_id: AtomicU64,
    date: date::DateCache,
}

/// A running server.
pub struct Server {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// Stack of each coroutine, in words (512 KiB on 64-bit). Only the pages a
/// coroutine touches become resident; the size leaves room for serde's
/// recursion limit on hostile, deeply nested JSON, even in debug builds.
const STACK_WORDS: usize = 64 * 1024;

/// Spawns a may coroutine.
///
/// SAFETY (why this crate is not `forbid(unsafe_code)`): `may` marks spawning
/// unsafe because a coroutine can move between worker threads at every yield
/// point, so a thread-local borrowed across a yield, or a blocking wait on a
/// thread primitive, would misbehave. The coroutines spawned here run the
/// acceptor and the connection loops: they yield only in `may` socket calls
/// and in the engine bridge's `may` channel, hold no thread-local across
/// those, and never block the thread.
#[allow(unsafe_code)]
fn spawn_coroutine(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    let builder = may::coroutine::Builder::new()
        .name(name.to_owned())
        .stack_size(STACK_WORDS);
    unsafe { builder.spawn(f) }.map(|_| ())
}

/// Turns a bound std listener into a may listener.
#[allow(unsafe_code)]
fn into_may_listener(listener: std::net::TcpListener) -> may::net::TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: `into_raw_fd` hands over sole ownership of a valid, open
    // listening socket; `from_raw_fd` takes that ownership. Nothing else
    // refers to the descriptor.
    unsafe { may::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

impl Server {
    /// Serves `handler` on an already bound listener.
    pub fn start<H: Handler>(
        listener: std::net::TcpListener,
        handler: Arc<H>,
        cfg: ServerConfig,
        clock: SharedClock,
        name: &'static str,
    ) -> std::io::Result<Server> {
        let local_addr = listener.local_addr()?;
        let listener = into_may_listener(listener);
        let shared = Arc::new(Shared {
            shutting_down: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            conns: Mutex::new(Registry::default()),
            next_id: AtomicU64::new(0),
            date: date::DateCache::new(clock),
        });
        let sh = shared.clone();
        spawn_coroutine(name, move || accept_loop(listener, handler, sh, cfg, name))?;
        Ok(Server { local_addr, shared })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish (up to `drain`), and
    /// closes idle connections. Answers sent during the drain carry
    /// `Connection: close`.
    pub fn shutdown(&self, drain: Duration) {
        if self.shared.shutting_down.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the acceptor so it sees the flag.
        let mut wake = self.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = StdTcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let t = Stopwatch::start();
        loop {
            self.close_idle();
            if self.shared.in_flight.load(Ordering::Acquire) == 0 || t.elapsed() >= drain {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.close_idle();
    }

    fn close_idle(&self) {
        let conns = self
            .shared
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for c in conns.conns.values() {
            if !c.busy.load(Ordering::Acquire) {
                let _ = c.stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::Acquire)
    }
}

fn accept_loop<H: Handler>(
    listener: may::net::TcpListener,
    handler: Arc<H>,
    shared: Arc<Shared>,
    cfg: ServerConfig,
    name: &'static str,
) {
    let cfg = Arc::new(cfg);
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) => {
                if shared.shutting_down.load(Ordering::Acquire) {
                    break;
                }
                tracing::warn!(server = name, error = %e, "accept failed");
                may::coroutine::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if shared.shutting_down.load(Ordering::Acquire) {
            break;
        }
        let mut stream = stream;
        let registry_copy = match stream.inner().try_clone() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(server = name, error = %e, "cannot register connection");
                continue;
            }
        };
        let busy = Arc::new(AtomicBool::new(true));
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let admitted = shared
            .conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(
                id,
                ConnEntry {
                    stream: registry_copy,
                    busy: busy.clone(),
                    peer: peer_key(peer),
                },
                &cfg,
            );
        if let Err(refused) = admitted {
            let limit = match refused {
                Refused::Total => "total",
                Refused::PerIp => "per_ip",
            };
            metrics::counter!(crate::telemetry::HTTP_CONNECTIONS_REJECTED_TOTAL, "server" => name, "limit" => limit)
                .increment(1);
            let Handled {
                response,
                request_id,
            } = handler.overloaded();
            let mut out = Vec::new();
            shared
                .date
                .with(|date| response::encode(&mut out, &response, &request_id, date, true, false));
            // Best effort, without blocking the acceptor.
            let _ = stream.inner_mut().write_all(&out);
            continue;
        }
        let handler = handler.clone();
        let shared2 = shared.clone();
        let cfg2 = cfg.clone();
        let spawned = spawn_coroutine("conn", move || {
            conn::serve(&mut stream, peer, &*handler, &shared2, &cfg2, &busy);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            shared2
                .conns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .release(id);
        });
        if let Err(e) = spawned {
            tracing::error!(server = name, error = %e, "cannot start a connection coroutine");
            shared
                .conns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .release(id);
        }
    }
    tracing::info!(server = name, "stopped accepting connections");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(peer: &str) -> ConnEntry {
        // Any open socket will do: the registry only keeps it to shut it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        ConnEntry {
            stream: StdTcpStream::connect(listener.local_addr().unwrap()).unwrap(),
            busy: Arc::new(AtomicBool::new(false)),
            peer: peer_key(peer.parse().unwrap()),
        }
    }

    #[test]
    fn per_address_limit_counts_and_releases() {
        let cfg = ServerConfig {
            max_connections: 5,
            max_connections_per_ip: 2,
            ..ServerConfig::default()
        };
        let mut r = Registry::default();
        assert_eq!(r.admit(1, entry("192.0.2.1:1000"), &cfg), Ok(()));
        assert_eq!(r.admit(2, entry("[::ffff:192.0.2.1]:1001"), &cfg), Ok(()));
        assert_eq!(
            r.admit(3, entry("192.0.2.1:1002"), &cfg),
            Err(Refused::PerIp)
        );
        // IPv6 by /64.
        assert_eq!(r.admit(4, entry("[2001:db8::1]:1"), &cfg), Ok(()));
        assert_eq!(r.admit(5, entry("[2001:db8::2]:1"), &cfg), Ok(()));
        assert_eq!(
            r.admit(6, entry("[2001:db8::3]:1"), &cfg),
            Err(Refused::PerIp)
        );
        assert_eq!(r.admit(7, entry("[2001:db8:0:1::1]:1"), &cfg), Ok(()));
        assert_eq!(
            r.admit(8, entry("192.0.2.9:1"), &cfg),
            Err(Refused::Total),
            "the total still counts"
        );
        r.release(1);
        r.release(1);
        assert_eq!(r.admit(9, entry("192.0.2.1:1003"), &cfg), Ok(()));
        for id in [2, 4, 5, 7, 9] {
            r.release(id);
        }
        assert!(r.conns.is_empty() && r.per_ip.is_empty(), "nothing kept");
        let off = ServerConfig {
            max_connections_per_ip: 0,
            ..cfg
        };
        for id in 0..5 {
            assert_eq!(r.admit(id, entry("192.0.2.1:1"), &off), Ok(()));
        }
    }
}
