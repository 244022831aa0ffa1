//! HTTP framing over raw sockets: what the published may_minihttp got wrong.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::support::*;

fn get_with_headers(n: usize) -> Vec<u8> {
    let mut req = b"GET /healthz HTTP/1.1\r\nHost: t\r\n".to_vec();
    for i in 0..n {
        req.extend(format!("X-Header-{i}: value-{i}\r\n").bytes());
    }
    req.extend(b"\r\n");
    req
}

#[test]
fn sixty_four_headers_are_served() {
    let srv = TestServer::start();
    let (r, _) = raw(srv.addr, &get_with_headers(64));
    assert_eq!(r.unwrap().status, 200);
}

#[test]
fn too_many_or_too_large_headers_are_431_and_close() {
    let srv = TestServer::start();
    let (r, mut s) = raw(srv.addr, &get_with_headers(120));
    let r = r.unwrap();
    r.problem(431, "header_fields_too_large");
    assert!(closed(&mut s));
    let mut big = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
    big.extend(std::iter::repeat_n(b'x', 20 * 1024));
    big.extend(b"\r\n\r\n");
    let (r, mut s) = raw(srv.addr, &big);
    r.unwrap().problem(431, "header_fields_too_large");
    assert!(closed(&mut s));
    assert_eq!(srv.client().get("/healthz", None).status, 200);
}

#[test]
fn malformed_framing_is_400_and_closes_only_that_connection() {
    let srv = TestServer::start();
    // A healthy keep-alive connection opened before the bad ones.
    let mut keeper = TcpStream::connect(srv.addr).unwrap();
    keeper
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cases: [&[u8]; 7] = [
        b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
        b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",
        b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n\r\n",
    ];
    for case in cases {
        let (r, mut s) = raw(srv.addr, case);
        let r = r.unwrap_or_else(|| panic!("no answer to {:?}", String::from_utf8_lossy(case)));
        r.problem(400, "bad_request");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(&mut s), "{:?}", String::from_utf8_lossy(case));
    }
    let (r, _) = raw(
        srv.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    );
    r.unwrap().problem(501, "not_implemented");
    keeper
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut keeper, false).unwrap().status, 200);
}

#[test]
fn pipelined_requests_and_bodies_keep_the_stream_in_step() {
    let srv = TestServer::start();
    let login = br#"{"email":"pipe@example.com","password":"password-1"}"#;
    let mut req = Vec::new();
    // A POST whose body must be consumed, then two GETs, in one write.
    req.extend(format!("POST /v1/auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", login.len()).bytes());
    req.extend_from_slice(login);
    req.extend(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: second\r\n\r\n");
    req.extend(b"GET /nope HTTP/1.1\r\nHost: t\r\nX-Request-Id: third\r\n\r\n");
    let (first, mut stream) = raw(srv.addr, &req);
    assert_eq!(first.unwrap().status, 201);
    let second = read_response(&mut stream, false).unwrap();
    assert_eq!(
        (second.status, second.header("x-request-id")),
        (200, Some("second"))
    );
    let third = read_response(&mut stream, false).unwrap();
    assert_eq!(
        (third.status, third.header("x-request-id")),
        (404, Some("third"))
    );
    // The connection is still usable.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, false).unwrap().status, 200);
}

#[test]
fn chunked_bodies_and_expect_continue_work() {
    let srv = TestServer::start();
    let body = br#"{"email":"chunk@example.com","password":"password-1"}"#;
    let (a, b) = body.split_at(10);
    let mut req = b"POST /v1/auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    req.extend(format!("{:x}\r\n", a.len()).bytes());
    req.extend_from_slice(a);
    req.extend(format!("\r\n{:x}\r\n", b.len()).bytes());
    req.extend_from_slice(b);
    req.extend(b"\r\n0\r\n\r\n");
    let (r, _) = raw(srv.addr, &req);
    assert_eq!(r.unwrap().status, 201);

    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = br#"{"email":"chunk@example.com","password":"password-1"}"#;
    s.write_all(format!("POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n", body.len()).as_bytes()).unwrap();
    let interim = read_response(&mut s, false).unwrap();
    assert_eq!(interim.status, 100);
    s.write_all(body).unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
}

#[test]
fn request_ids_are_echoed_when_sane_and_made_otherwise() {
    let srv = TestServer::start();
    let c = srv.client();
    let r = c.request(
        "GET",
        "/healthz",
        &[("X-Request-Id", "abc-123.def_456")],
        None,
    );
    assert_eq!(r.header("x-request-id"), Some("abc-123.def_456"));
    let long = "x".repeat(200);
    for bad in ["has space", long.as_str(), "semi;colon"] {
        let r = c.request("GET", "/healthz", &[("X-Request-Id", bad)], None);
        let id = r.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert_eq!(id.len(), 16);
    }
    let a = c.get("/healthz", None);
    let b = c.get("/healthz", None);
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

#[test]
fn head_requests_get_headers_only_and_http10_closes() {
    let srv = TestServer::start();
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
    )
    .unwrap();
    let head = read_response(&mut s, true).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(read_response(&mut s, false).unwrap().json()["status"], "ok");
    let (r, mut s) = raw(srv.addr, b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(r.unwrap().status, 200);
    assert!(closed(&mut s));
}

#[test]
fn a_slow_request_times_out_with_408() {
    let srv = TestServer::with(|_, edge| edge.server.request_timeout = Duration::from_millis(300));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{\"em")
        .unwrap();
    let r = read_response(&mut s, false).unwrap();
    r.problem(408, "request_timeout");
    assert!(closed(&mut s));
}

#[test]
fn odd_expectations_and_unicode_transfer_codings_are_refused() {
    let srv = TestServer::start();
    let (r, _) = raw(
        srv.addr,
        b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nExpect: 200-ok\r\nContent-Length: 2\r\n\r\n{}",
    );
    r.unwrap().problem(417, "expectation_failed");
    let (r, _) = raw(
        srv.addr,
        "POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\u{a0}\r\n\r\n"
            .as_bytes(),
    );
    r.unwrap().problem(501, "not_implemented");
    let (r, _) = raw(srv.addr, b"POST /v1/auth/login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2;\nxx\r\n0\r\n\r\n");
    r.unwrap().problem(400, "bad_request");
}

#[test]
fn a_request_trickling_in_byte_by_byte_is_served() {
    let srv = TestServer::start();
    let body = br#"{"email":"slow@example.com","password":"password-1"}"#;
    let mut req = b"POST /v1/auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for b in body {
        req.extend(format!("1\r\n{}\r\n", *b as char).bytes());
    }
    req.extend(b"0\r\n\r\n");
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for b in &req {
        s.write_all(std::slice::from_ref(b)).unwrap();
    }
    assert_eq!(read_response(&mut s, false).unwrap().status, 201);
}

#[test]
fn steady_pipelining_is_not_timed_out() {
    let srv = TestServer::with(|_, edge| edge.server.request_timeout = Duration::from_millis(400));
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let one = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    let stream: Vec<u8> = one.iter().copied().cycle().take(one.len() * 12).collect();
    // Pieces that end mid-request, every 100 ms: 1.2 s in all, three
    // request timeouts, yet every request completes within its own.
    let piece = one.len() + one.len() / 2;
    for chunk in stream.chunks(piece) {
        s.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    for i in 0..12 {
        let r = read_response(&mut s, false).unwrap_or_else(|| panic!("response {i} missing"));
        assert_eq!(r.status, 200, "response {i}");
    }
}

#[test]
fn connections_over_the_limit_get_a_problem_document() {
    let srv = TestServer::with(|_, edge| edge.server.max_connections = 1);
    let mut first = TcpStream::connect(srv.addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut first, false).unwrap().status, 200);
    let (r, mut second) = raw(srv.addr, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = r.unwrap();
    r.problem(503, "overloaded");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(closed(&mut second));
    drop(first);
}
