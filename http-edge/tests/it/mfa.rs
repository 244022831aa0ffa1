//! TOTP MFA over HTTP: enroll, confirm, login's second step, recovery
//! codes, replay, lockout, disable.

use std::time::Duration;

use portcullis_engine::clock::Clock;
use portcullis_engine::mfa::totp;
use serde_json::{Value, json};

use crate::support::*;

/// RFC 4648 base32 (no padding) back to bytes.
pub(crate) fn base32_decode(s: &str) -> Vec<u8> {
    let (mut buffer, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => panic!("not base32: {s}"),
        };
        buffer = (buffer << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

pub(crate) fn code(srv: &TestServer, secret: &[u8]) -> String {
    let step = totp::step_at(srv.clock.now_ms());
    format!("{:06}", totp::code_at(secret, step, totp::DIGITS))
}

/// A code that is certainly wrong at any of the accepted steps.
pub(crate) fn wrong(srv: &TestServer, secret: &[u8]) -> String {
    let now = totp::step_at(srv.clock.now_ms());
    let near: Vec<u32> = (now - 1..=now + 1)
        .map(|s| totp::code_at(secret, s, totp::DIGITS))
        .collect();
    let w = (0..).find(|c| !near.contains(c)).unwrap();
    format!("{w:06}")
}

pub(crate) fn next_step(srv: &TestServer) {
    srv.clock.advance(Duration::from_secs(totp::STEP_SECS));
}

/// Registers, enrolls and confirms TOTP; returns (access, secret, recovery codes).
pub(crate) fn with_totp(srv: &TestServer, email: &str) -> (String, Vec<u8>, Vec<String>) {
    let c = srv.client();
    let reg = srv.register(email, "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let r = enroll(srv, &access, "password-1");
    assert_eq!(r.status, 200, "{}", r.text());
    let e = r.json();
    let secret = base32_decode(s(&e["secret"]));
    assert_eq!(secret.len(), 20);
    let uri = s(&e["otpauth_uri"]);
    assert!(uri.starts_with("otpauth://totp/Portcullis:"), "{uri}");
    assert!(
        uri.contains(&format!("secret={}", s(&e["secret"]))) && uri.contains("digits=6&period=30")
    );
    let r = c.post_json(
        "/v1/mfa/totp/confirm",
        &json!({"code": code(srv, &secret)}),
        Some(&access),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let codes: Vec<String> = r.json()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| s(v).to_owned())
        .collect();
    (access, secret, codes)
}

/// `POST /v1/mfa/totp/enroll` with the current password.
pub(crate) fn enroll(srv: &TestServer, access: &str, password: &str) -> Resp {
    srv.client().post_json(
        "/v1/mfa/totp/enroll",
        &json!({"password": password}),
        Some(access),
    )
}

pub(crate) fn mfa_token(srv: &TestServer, email: &str) -> String {
    let r = srv.login(email, "password-1");
    assert_eq!(r.status, 200, "{}", r.text());
    let b: Value = r.json();
    assert_eq!(b["mfa_required"], true, "{b}");
    assert!(
        b.get("access_token").is_none(),
        "no tokens before the second factor"
    );
    assert_eq!(b["expires_in"], 300);
    s(&b["mfa_token"]).to_owned()
}

fn enrollment_turns_mfa_on_only_once_confirmed_with_a_code(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let reg = srv.register("enroll@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    // A bare access token enrolls nothing: the password is required.
    enroll(&srv, &access, "wrong-password-9").problem(401, "invalid_credentials");
    let e = enroll(&srv, &access, "password-1").json();
    let secret = base32_decode(s(&e["secret"]));
    // Not on yet: logins still give tokens.
    assert!(srv.login("enroll@example.com", "password-1").json()["access_token"].is_string());
    c.post_json(
        "/v1/mfa/totp/confirm",
        &json!({"code": wrong(&srv, &secret)}),
        Some(&access),
    )
    .problem(400, "invalid_mfa");
    let r = c.post_json(
        "/v1/mfa/totp/confirm",
        &json!({"code": code(&srv, &secret)}),
        Some(&access),
    );
    let codes = r.json()["recovery_codes"].as_array().unwrap().clone();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        c.get("/v1/users/me", Some(&access)).json()["mfa_enabled"],
        true
    );
    enroll(&srv, &access, "password-1").problem(409, "mfa_already_enabled");
    c.post_json(
        "/v1/mfa/totp/enroll",
        &json!({"password": "password-1"}),
        None,
    )
    .problem(401, "missing_token");
}

fn login_needs_the_second_factor_and_a_code_cannot_be_replayed(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let (_, secret, _) = with_totp(&srv, "second@example.com");
    let token = mfa_token(&srv, "second@example.com");
    // The confirmation used this time step's code: it cannot log in again.
    let replay = code(&srv, &secret);
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": replay}),
        None,
    )
    .problem(401, "invalid_mfa");
    next_step(&srv);
    let good = code(&srv, &secret);
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": good}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let access = s(&r.json()["access_token"]).to_owned();
    assert_eq!(c.get("/v1/users/me", Some(&access)).status, 200);
    // The mfa_token is used up, and the code too, even with a new token.
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": good}),
        None,
    )
    .problem(401, "invalid_mfa");
    let token2 = mfa_token(&srv, "second@example.com");
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token2, "code": good}),
        None,
    )
    .problem(401, "invalid_mfa");
    // Tokens of other flows, and expired ones, are refused.
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": "pcv_x.y", "code": good}),
        None,
    )
    .problem(401, "invalid_mfa");
    srv.clock.advance(Duration::from_secs(301));
    let fresh = code(&srv, &secret);
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token2, "code": fresh}),
        None,
    )
    .problem(401, "invalid_mfa");
}

fn a_recovery_code_works_once(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let (_, _, codes) = with_totp(&srv, "recovery@example.com");
    let token = mfa_token(&srv, "recovery@example.com");
    // Typed in lower case without the dash: still the code.
    let typed = codes[3].replace('-', "").to_lowercase();
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": typed}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = mfa_token(&srv, "recovery@example.com");
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": codes[3]}),
        None,
    )
    .problem(401, "invalid_mfa");
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": codes[4]}),
        None,
    );
    assert_eq!(r.status, 200, "another recovery code still works");
}

fn wrong_codes_count_toward_the_lockout(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let (_, secret, _) = with_totp(&srv, "lock@example.com");
    let token = mfa_token(&srv, "lock@example.com");
    for _ in 0..5 {
        c.post_json(
            "/v1/auth/login/mfa",
            &json!({"mfa_token": token, "code": wrong(&srv, &secret)}),
            None,
        );
    }
    next_step(&srv);
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": code(&srv, &secret)}),
        None,
    );
    r.problem(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
}

fn disable_needs_a_valid_code_and_then_logins_need_only_the_password(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let (access, secret, codes) = with_totp(&srv, "disable@example.com");
    c.post_json(
        "/v1/mfa/totp/disable",
        &json!({"code": wrong(&srv, &secret), "password": "password-1"}),
        Some(&access),
    )
    .problem(400, "invalid_mfa");
    // A right code with a wrong password: a stolen access token and a
    // shoulder-surfed code turn nothing off.
    c.post_json(
        "/v1/mfa/totp/disable",
        &json!({"code": codes[1], "password": "wrong-password-9"}),
        Some(&access),
    )
    .problem(401, "invalid_credentials");
    let r = c.post_json(
        "/v1/mfa/totp/disable",
        &json!({"code": codes[0], "password": "password-1"}),
        Some(&access),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(
        c.get("/v1/users/me", Some(&access)).json()["mfa_enabled"],
        false
    );
    assert!(srv.login("disable@example.com", "password-1").json()["access_token"].is_string());
    next_step(&srv);
    c.post_json(
        "/v1/mfa/totp/disable",
        &json!({"code": code(&srv, &secret), "password": "password-1"}),
        Some(&access),
    )
    .problem(400, "invalid_mfa");
}

on_every_store!(
    enrollment_turns_mfa_on_only_once_confirmed_with_a_code,
    login_needs_the_second_factor_and_a_code_cannot_be_replayed,
    a_recovery_code_works_once,
    wrong_codes_count_toward_the_lockout,
    disable_needs_a_valid_code_and_then_logins_need_only_the_password,
);
