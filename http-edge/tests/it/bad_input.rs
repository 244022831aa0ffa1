//! Bad input gets its documented 4xx and a problem document, and the server
//! keeps serving.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::support::*;

fn post_raw(c: &Client, path: &str, content_type: Option<&str>, body: &[u8]) -> Resp {
    let headers: Vec<(&str, &str)> = content_type
        .iter()
        .map(|ct| ("Content-Type", *ct))
        .collect();
    c.request("POST", path, &headers, Some(body))
}

fn still_serving(srv: &TestServer) {
    assert_eq!(srv.client().get("/healthz", None).status, 200);
}

#[test]
fn bodies_that_are_not_acceptable() {
    let srv = TestServer::start();
    let c = srv.client();
    let long_password = "p".repeat(2000);
    let absurd_email = format!("{}@{}.com", "a".repeat(300), "b".repeat(300));
    // (what, content type, body, status, code, field named in `errors`)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        u16,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "malformed JSON",
            Some("application/json"),
            br#"{"email": "a@b.co", "password":"#.to_vec(),
            400,
            "invalid_request",
            None,
        ),
        (
            "trailing garbage",
            Some("application/json"),
            br#"{"email":"a@b.co","password":"password-1"} x"#.to_vec(),
            400,
            "invalid_request",
            None,
        ),
        (
            "wrong type",
            Some("application/json"),
            br#"{"email": 42, "password": "password-1"}"#.to_vec(),
            400,
            "invalid_request",
            Some("email"),
        ),
        (
            "array",
            Some("application/json"),
            b"[]".to_vec(),
            400,
            "invalid_request",
            None,
        ),
        (
            "deep nesting",
            Some("application/json"),
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "invalid_request",
            None,
        ),
        (
            "deep object",
            Some("application/json"),
            format!(
                "{{\"email\":{}1{}}}",
                "{\"a\":".repeat(100),
                "}".repeat(100)
            )
            .into_bytes(),
            400,
            "invalid_request",
            Some("email"),
        ),
        (
            "missing field",
            Some("application/json"),
            br#"{"email": "a@b.co"}"#.to_vec(),
            400,
            "invalid_request",
            Some("password"),
        ),
        (
            "unknown field",
            Some("application/json"),
            br#"{"email": "a@b.co", "password": "password-1", "admin": true}"#.to_vec(),
            400,
            "invalid_request",
            Some("body"),
        ),
        (
            "bad UTF-8",
            Some("application/json"),
            b"{\"email\": \"a\xff@b.co\", \"password\": \"password-1\"}".to_vec(),
            400,
            "invalid_request",
            None,
        ),
        (
            "empty body",
            Some("application/json"),
            Vec::new(),
            400,
            "invalid_request",
            None,
        ),
        (
            "absurd email",
            Some("application/json"),
            json!({"email": absurd_email, "password": "password-1"})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            Some("email"),
        ),
        (
            "not an email",
            Some("application/json"),
            br#"{"email": "nope", "password": "password-1"}"#.to_vec(),
            400,
            "invalid_request",
            Some("email"),
        ),
        (
            "short password",
            Some("application/json"),
            br#"{"email": "a@b.co", "password": "short"}"#.to_vec(),
            400,
            "invalid_request",
            Some("password"),
        ),
        (
            "2000-byte password",
            Some("application/json"),
            json!({"email": "a@b.co", "password": long_password})
                .to_string()
                .into_bytes(),
            400,
            "invalid_request",
            Some("password"),
        ),
        (
            "form body",
            Some("application/x-www-form-urlencoded"),
            b"email=a@b.co&password=password-1".to_vec(),
            415,
            "unsupported_media_type",
            None,
        ),
        (
            "no content type",
            None,
            br#"{"email": "a@b.co", "password": "password-1"}"#.to_vec(),
            415,
            "unsupported_media_type",
            None,
        ),
    ];
    for (what, ct, body, status, code, field) in cases {
        for path in ["/v1/auth/register", "/v1/auth/login"] {
            let r = post_raw(&c, path, ct, &body);
            let doc = r.problem(status, code);
            if let Some(f) = field {
                let fields: Vec<&str> = doc["errors"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{what}: {doc}"))
                    .iter()
                    .map(|e| e["field"].as_str().unwrap())
                    .collect();
                assert!(fields.contains(&f), "{what} on {path}: {doc}");
            }
        }
        still_serving(&srv);
    }
    // Nothing was created by any of it.
    srv.login("a@b.co", "password-1")
        .problem(401, "invalid_credentials");
}

#[test]
fn a_one_mebibyte_body_is_413_and_the_connection_closes() {
    let srv = TestServer::start();
    let mut req = b"POST /v1/auth/register HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'a', 64 * 1024));
    let (r, mut stream) = raw(srv.addr, &req);
    let r = r.unwrap();
    r.problem(413, "payload_too_large");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(closed(&mut stream));
    still_serving(&srv);
}

fn header_b64(v: &Value) -> String {
    B64.encode(v.to_string())
}

#[test]
fn forged_and_expired_tokens_are_401() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("victim@example.com", "password-1");
    let good = s(&reg["access_token"]).to_owned();
    let parts: Vec<&str> = good.split('.').collect();
    let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
    let kid = s(&header["kid"]).to_owned();

    // alg: none, no signature.
    let none = format!(
        "{}.{}.",
        header_b64(&json!({"alg": "none", "typ": "JWT"})),
        parts[1]
    );
    // HS256 keyed with the server's public key (algorithm confusion).
    let jwks = c.get("/.well-known/jwks.json", None).json();
    let x = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()["x"]
        .clone();
    let public = B64.decode(s(&x)).unwrap();
    let hs_input = format!(
        "{}.{}",
        header_b64(&json!({"alg": "HS256", "typ": "JWT", "kid": kid})),
        parts[1]
    );
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &public),
        hs_input.as_bytes(),
    );
    let hs256 = format!("{hs_input}.{}", B64.encode(tag.as_ref()));
    // Properly signed, but by a key the server does not know.
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let stranger = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let _ = stranger.public_key();
    let uk_input = format!(
        "{}.{}",
        header_b64(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "unknown-kid"})),
        parts[1]
    );
    let unknown_kid = format!(
        "{uk_input}.{}",
        B64.encode(stranger.sign(uk_input.as_bytes()).as_ref())
    );
    // Our kid, a stranger's signature.
    let sk_input = format!("{}.{}", parts[0], parts[1]);
    let stolen_kid = format!(
        "{sk_input}.{}",
        B64.encode(stranger.sign(sk_input.as_bytes()).as_ref())
    );
    // A tampered payload under the real signature.
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("00000000-0000-7000-8000-000000000000");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );

    for (what, token) in [
        ("alg none", none.as_str()),
        ("HS256 with the public key", &hs256),
        ("unknown kid", &unknown_kid),
        ("foreign signature", &stolen_kid),
        ("tampered payload", &tampered),
        ("not a JWT", "hello"),
    ] {
        let r = c.get("/v1/users/me", Some(token));
        r.problem(401, "invalid_token");
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
        still_serving(&srv);
    }
    // Non-Bearer schemes count as no token.
    c.request(
        "GET",
        "/v1/users/me",
        &[("Authorization", &format!("Basic {good}"))],
        None,
    )
    .problem(401, "missing_token");
    // The genuine token still works; then it expires.
    assert_eq!(c.get("/v1/users/me", Some(&good)).status, 200);
    srv.clock.advance(std::time::Duration::from_secs(901));
    let p = c
        .get("/v1/users/me", Some(&good))
        .problem(401, "invalid_token");
    assert!(p["detail"].as_str().unwrap().contains("expired"));
}

#[test]
fn unknown_routes_and_methods() {
    let srv = TestServer::start();
    let c = srv.client();
    c.get("/v1/nope", None).problem(404, "not_found");
    c.get("/v1/auth/register", None)
        .problem(405, "method_not_allowed");
    let r = c.request("PUT", "/v1/users/me", &[], None);
    r.problem(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("GET, HEAD, PATCH"));
    // A provider that is not configured.
    c.get("/v1/oauth/google/authorize", None)
        .problem(404, "unknown_provider");
    c.get("/v1/oauth/google/nope", None)
        .problem(404, "not_found");
    // A route's wrong method names the allowed one.
    let r = c.get("/v1/auth/login/mfa", None);
    r.problem(405, "method_not_allowed");
    assert_eq!(r.header("allow"), Some("POST"));
}
