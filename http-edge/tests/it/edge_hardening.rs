//! Attacks on the HTTP edge itself: escaping the per-IP rate limit through
//! forwarding headers, bodies read differently by a front end and by us,
//! and 401s without a challenge.

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
