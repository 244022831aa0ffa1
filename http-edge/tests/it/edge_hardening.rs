//! Attacks on the HTTP edge itself: escaping the per-IP rate limit through
//! forwarding headers.

use crate::support::{Resp, TestServer};

/// Behind a trusted proxy at 127.0.0.1, two logins per address, then 429.
fn behind_proxy() -> TestServer {
    TestServer::with(|_, edge| {
        edge.trusted_proxies = "127.0.0.1".parse().unwrap();
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
    let srv = behind_proxy();
    exhaust(&srv, &[("Forwarded", r#"for="[2001:db8:3::1]:80""#)]);
    // The same client by its other spellings (and its /64) is limited...
    limited(&login(&srv, &[("X-Forwarded-For", "2001:db8:3::1")]));
    limited(&login(
        &srv,
        &[("forwarded", "FOR=\"[2001:db8:3::2]\";proto=https")],
    ));
    // ...Forwarded wins over X-Forwarded-For...
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
fn obfuscated_identifiers_get_their_own_buckets() {
    let srv = behind_proxy();
    exhaust(&srv, &[("Forwarded", "for=_hidden")]);
    limited(&login(&srv, &[("Forwarded", r#"for="_hidden:_1234""#)]));
    admitted(&login(&srv, &[("Forwarded", "for=_other")]));
    admitted(&login(&srv, &[("Forwarded", "for=unknown")]));
    admitted(&login(&srv, &[]));
}
