//! Attacks on the HTTP edge itself: escaping the per-IP rate limit through
//! forwarding headers, bodies read differently by a front end and by us,
//! 401s without a challenge, and one address holding every connection.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::support::{Resp, TestServer, closed, raw, read_response};

/// Behind a trusted proxy at 127.0.0.1 writing `X-Forwarded-For`, two
/// logins per address, then 429.
fn behind_proxy() -> TestServer {
    TestServer::with(|_, edge| {
        edge.trusted_proxies = "127.0.0.1".parse().unwrap();
        edge.ip_rate_limit = "1/h,burst=2".parse().unwrap();
    })
}

/// The same behind a proxy writing RFC 7239 `Forwarded`.
fn behind_forwarded_proxy() -> TestServer {
    TestServer::with(|_, edge| {
        edge.trusted_proxies = "127.0.0.1".parse().unwrap();
        edge.forwarded_header = portcullis_edge::clientip::ForwardedHeader::Forwarded;
        edge.ip_rate_limit = "1/h,burst=2".parse().unwrap();
    })
}

/// A login attempt (an empty object: past the limiter it is a 400, never
/// reaching the engine) carrying `headers`.
fn login(srv: &TestServer, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    srv.client()
        .request("POST", "/v1/auth/login", &all, Some(b"{}"))
}

fn admitted(r: &Resp) {
    r.problem(400, "invalid_request");
}

fn limited(r: &Resp) {
    r.problem(429, "rate_limited");
}

/// Uses up the two requests `headers` may make.
fn exhaust(srv: &TestServer, headers: &[(&str, &str)]) {
    admitted(&login(srv, headers));
    admitted(&login(srv, headers));
    limited(&login(srv, headers));
}

#[test]
fn junk_prefixed_to_x_forwarded_for_does_not_escape_the_limit() {
    let srv = behind_proxy();
    exhaust(&srv, &[("X-Forwarded-For", "203.0.113.7")]);
    // The proxy appended the real address; what the client wrote is left of it.
    limited(&login(&srv, &[("X-Forwarded-For", "junk, 203.0.113.7")]));
    limited(&login(&srv, &[("X-Forwarded-For", "203.0.113.7:4711")]));
    limited(&login(
        &srv,
        &[
            ("X-Forwarded-For", "junk"),
            ("X-Forwarded-For", "198.51.100.1, 203.0.113.7"),
        ],
    ));
    // Another client behind the same proxy is unaffected.
    admitted(&login(&srv, &[("X-Forwarded-For", "203.0.113.8")]));
}

#[test]
fn ipv6_clients_with_ports_do_not_share_a_bucket() {
    let srv = behind_proxy();
    exhaust(&srv, &[("X-Forwarded-For", "[2001:db8:1::1]:5000")]);
    admitted(&login(&srv, &[("X-Forwarded-For", "[2001:db8:2::1]:6000")]));
    // Nor with the proxy itself.
    admitted(&login(&srv, &[]));
}

#[test]
fn forwarded_header_is_honoured() {
    let srv = behind_forwarded_proxy();
    exhaust(&srv, &[("Forwarded", r#"for="[2001:db8:3::1]:80""#)]);
    // The same client by its other spellings (and its /64) is limited...
    limited(&login(
        &srv,
        &[("forwarded", "FOR=\"[2001:db8:3::2]\";proto=https")],
    ));
    // ...X-Forwarded-For is not read at all...
    limited(&login(
        &srv,
        &[
            ("Forwarded", r#"for="[2001:db8:3::1]:80""#),
            ("X-Forwarded-For", "203.0.113.9"),
        ],
    ));
    // ...and the proxy's own bucket is untouched.
    admitted(&login(&srv, &[]));
}

#[test]
fn a_forwarded_header_the_proxy_does_not_write_is_ignored() {
    // The proxy writes X-Forwarded-For and passes a client's Forwarded on:
    // a fresh Forwarded value per request must not buy a fresh bucket.
    let srv = behind_proxy();
    exhaust(&srv, &[("X-Forwarded-For", "203.0.113.70")]);
    for i in 0..3 {
        let spoof = format!("for=198.51.100.{i}");
        limited(&login(
            &srv,
            &[
                ("Forwarded", spoof.as_str()),
                ("X-Forwarded-For", "203.0.113.70"),
            ],
        ));
    }
}

#[test]
fn obfuscated_identifiers_get_their_own_buckets() {
    let srv = behind_forwarded_proxy();
    exhaust(&srv, &[("Forwarded", "for=_hidden")]);
    limited(&login(&srv, &[("Forwarded", r#"for="_hidden:_1234""#)]));
    admitted(&login(&srv, &[("Forwarded", "for=_other")]));
    admitted(&login(&srv, &[("Forwarded", "for=unknown")]));
    admitted(&login(&srv, &[]));
}

fn post_raw(srv: &TestServer, path: &str, body: &[u8]) -> Resp {
    srv.client().request(
        "POST",
        path,
        &[("Content-Type", "application/json")],
        Some(body),
    )
}

#[test]
fn duplicate_json_keys_are_refused_and_register_nothing() {
    let srv = TestServer::start();
    let r = post_raw(
        &srv,
        "/v1/auth/register",
        br#"{"email":"dup-a@example.com","email":"dup-b@example.com","password":"correct horse battery"}"#,
    );
    let doc = r.problem(400, "invalid_request");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key 'email'"),
        "{doc}"
    );
    // Neither address was taken: both register now, with another password.
    srv.register("dup-a@example.com", "another horse battery");
    srv.register("dup-b@example.com", "another horse battery");
    // Spelled with an escape, it is still the same key.
    let r = post_raw(
        &srv,
        "/v1/auth/login",
        br#"{"email":"dup-a@example.com","password":"wrong","\u0070assword":"another horse battery"}"#,
    );
    let doc = r.problem(400, "invalid_request");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key 'password'"),
        "{doc}"
    );
}

#[test]
fn nested_duplicate_json_keys_are_refused() {
    let srv = TestServer::start();
    let r = post_raw(
        &srv,
        "/v1/auth/register",
        br#"{"email":"nest@example.com","password":"correct horse battery","name":{"first":"a","first":"b"}}"#,
    );
    let doc = r.problem(400, "invalid_request");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key 'first'"),
        "{doc}"
    );
    let r = post_raw(
        &srv,
        "/v1/auth/login",
        br#"{"email":"nest@example.com","password":[{"k":1},{"k":2,"k":3}]}"#,
    );
    let doc = r.problem(400, "invalid_request");
    assert!(
        doc["detail"]
            .as_str()
            .unwrap()
            .contains("duplicate key 'k'"),
        "{doc}"
    );
}

#[test]
fn login_mfa_401_carries_a_challenge() {
    let srv = TestServer::start();
    // The shape of an mfa_token (pcm_<user id>.<secret>), for no login.
    let token = format!("pcm_{}.{}", "A".repeat(22), "B".repeat(43));
    let r = srv.client().post_json(
        "/v1/auth/login/mfa",
        &serde_json::json!({"mfa_token": token, "code": "123456"}),
        None,
    );
    r.problem(401, "invalid_mfa");
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer realm="), "{challenge:?}");
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";

/// A connection to `server` from `local` (any port), answered once and left
/// open (keep-alive), so the server counts it.
fn idle_connection(server: SocketAddr, local: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&local.parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&server.into()).unwrap();
    let mut s: TcpStream = socket.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(HEALTH).unwrap();
    let r = read_response(&mut s, false).expect("an answer");
    assert_eq!(r.status, 200, "{}", r.text());
    s
}

/// Retries `attempt` until it says yes, for up to 10 s.
fn eventually(what: &str, mut attempt: impl FnMut() -> bool) {
    let t = portcullis_engine::clock::Stopwatch::start();
    while t.elapsed() < Duration::from_secs(10) {
        if attempt() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("not within 10 s: {what}");
}

#[test]
fn one_address_cannot_take_every_connection() {
    let srv = TestServer::with(|_, edge| edge.server.max_connections_per_ip = 3);
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| idle_connection(srv.addr, "127.0.0.1:0"))
        .collect();
    // A fourth from the same address is refused as at the global limit.
    let (r, mut fourth) = raw(srv.addr, HEALTH);
    let r = r.expect("an answer");
    r.problem(503, "overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(closed(&mut fourth));
    // Another address is not affected.
    let _other = idle_connection(srv.addr, "127.0.0.2:0");
    // The held connections still work.
    held[1].write_all(HEALTH).unwrap();
    assert_eq!(read_response(&mut held[1], false).unwrap().status, 200);
    // Closing one lets a new one in, once the server has seen it close.
    drop(held.pop());
    eventually("a connection is admitted after one closed", || {
        let (r, _s) = raw(srv.addr, HEALTH);
        r.is_some_and(|r| r.status == 200)
    });
}
