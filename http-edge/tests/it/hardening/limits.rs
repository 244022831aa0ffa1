//! Caps and limits: sessions per user, password changes and introspection
//! per address and per account, and forged refresh tokens spend nothing of
//! the owner's.

use std::time::Duration;

use serde_json::json;

use super::behind_proxy;
use crate::support::*;

// ---- 9. Sessions per user are capped -------------------------------------

#[test]
fn a_hundred_and_eleven_sign_ins_keep_a_hundred_sessions() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("many@example.com", "password-1");
    let first = s(&reg["access_token"]).to_owned();
    let mut last = String::new();
    for _ in 0..110 {
        srv.clock.advance(Duration::from_millis(10));
        let r = srv.login("many@example.com", "password-1");
        assert_eq!(r.status, 200, "{}", r.text());
        last = s(&r.json()["access_token"]).to_owned();
    }
    let list = c.get("/v1/sessions", Some(&last));
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()["sessions"].as_array().unwrap().len(), 100);
    // The least recently used ones ended: the first sign-in's.
    c.get("/v1/users/me", Some(&first))
        .problem(401, "invalid_token");
    assert_eq!(c.get("/v1/users/me", Some(&last)).status, 200);
}

// ---- 10. Expensive routes are limited ------------------------------------

#[test]
fn password_changes_are_limited_per_address_and_per_account() {
    let srv = behind_proxy(|e, edge| {
        edge.ip_rate_limit = "1/h,burst=3".parse().unwrap();
        e.account_rate_limit = Some(portcullis_engine::config::RateLimit {
            count: 1,
            period_ms: 3_600_000,
            burst: 4,
        });
    });
    let c = srv.client();
    // Registration from its own address, so it spends none of the others'.
    let reg = c.post_json_from(
        "192.0.2.1",
        "/v1/auth/register",
        &json!({"email": "costly@example.com", "password": "password-1"}),
        None,
    );
    let access = s(&reg.json()["access_token"]).to_owned();
    let change = |ip: &str| {
        c.post_json_from(
            ip,
            "/v1/password/change",
            &json!({"current_password": "wrong-password-x", "new_password": "another-secret-1"}),
            Some(&access),
        )
    };
    for _ in 0..3 {
        change("203.0.113.8").problem(401, "invalid_credentials");
    }
    change("203.0.113.8").problem(429, "rate_limited");
    // From another address: the account's own limit (4) stops the fifth.
    change("203.0.113.9").problem(401, "invalid_credentials");
    change("203.0.113.10").problem(429, "too_many_requests");
}

#[test]
fn introspection_is_limited_per_account() {
    let srv = behind_proxy(|e, _| {
        e.introspection_rate_limit = Some(portcullis_engine::config::RateLimit {
            count: 1,
            period_ms: 3_600_000,
            burst: 3,
        });
    });
    let c = srv.client();
    let reg = srv.register("intro@example.com", "password-1");
    let refresh = s(&reg["refresh_token"]).to_owned();
    for i in 0..3 {
        let r = c.post_json_from(
            &format!("203.0.113.{}", 30 + i),
            "/v1/oauth/introspect",
            &json!({"token": refresh}),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["active"], true);
    }
    c.post_json_from(
        "203.0.113.40",
        "/v1/oauth/introspect",
        &json!({"token": refresh}),
        None,
    )
    .problem(429, "too_many_requests");
}

// ---- Found by an attacker's review of the fixes above ---------------------

#[test]
fn made_up_refresh_tokens_do_not_spend_the_owners_introspection_budget() {
    let srv = behind_proxy(|e, _| {
        e.introspection_rate_limit = Some(portcullis_engine::config::RateLimit {
            count: 1,
            period_ms: 3_600_000,
            burst: 2,
        });
    });
    let c = srv.client();
    let reg = srv.register("budget@example.com", "password-1");
    let refresh = s(&reg["refresh_token"]).to_owned();
    // prt_<user>.<session>.<generation>.<secret>: forge the secret.
    let mut parts: Vec<&str> = refresh.split('.').collect();
    let forged_secret = "A".repeat(43);
    parts[3] = &forged_secret;
    let forged = parts.join(".");
    for i in 0..10 {
        let r = c.post_json_from(
            &format!("203.0.113.{}", 150 + i),
            "/v1/oauth/introspect",
            &json!({"token": forged}),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["active"], false);
    }
    let r = c.post_json_from(
        "198.51.100.60",
        "/v1/oauth/introspect",
        &json!({"token": refresh}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["active"], true);
}
