//! Registration, login, lockout, refresh rotation, logout.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn register_returns_the_user_and_a_working_session(stores: Stores) {
    let srv = TestServer::on(stores);
    let r = srv.client().post_json(
        "/v1/auth/register",
        &json!({"email": "  Ada@Example.COM ", "password": "correct horse", "name": "Ada"}),
        None,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    let user = &body["user"];
    assert_eq!(user["email"], "ada@example.com");
    assert_eq!(user["name"], "Ada");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["mfa_enabled"], false);
    assert!(user["id"].as_str().unwrap().len() == 36);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["refresh_expires_in"], 2_592_000);
    assert!(body["refresh_token"].as_str().unwrap().starts_with("prt_"));
    assert!(body["session_id"].is_string());
    let me = srv
        .client()
        .get("/v1/users/me", Some(s(&body["access_token"])));
    assert_eq!(me.status, 200);
    assert_eq!(me.json(), *user);
}

fn a_taken_email_is_409_whatever_its_case(stores: Stores) {
    let srv = TestServer::on(stores);
    srv.register("dup@example.com", "password-1");
    let r = srv.client().post_json(
        "/v1/auth/register",
        &json!({"email": "DUP@example.com", "password": "password-2"}),
        None,
    );
    r.problem(409, "email_taken");
    // The first account is intact: its password still works, the second does not.
    assert_eq!(srv.login("dup@example.com", "password-1").status, 200);
    srv.login("dup@example.com", "password-2")
        .problem(401, "invalid_credentials");
}

#[test]
fn fifty_concurrent_registrations_of_one_email_create_one_user() {
    let srv = TestServer::start();
    let client = srv.client();
    let handles: Vec<_> = (0..50)
        .map(|i| {
            std::thread::spawn(move || {
                let r = client.post_json(
                    "/v1/auth/register",
                    &json!({"email": "race@example.com", "password": format!("password-{i}")}),
                    None,
                );
                (i, r.status, r.json()["code"].clone())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for h in handles {
        let (i, status, code) = h.join().unwrap();
        match status {
            201 => winners.push(i),
            409 => assert_eq!(code, "email_taken"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(winners.len(), 1);
    // Exactly one user: only the winner's password logs in.
    for i in 0..50 {
        let r = srv.login("race@example.com", &format!("password-{i}"));
        assert_eq!(
            r.status == 200,
            i == winners[0],
            "password {i}: {}",
            r.status
        );
        if i % 4 == 3 {
            // Stay under the lockout threshold.
            assert_eq!(
                srv.login("race@example.com", &format!("password-{}", winners[0]))
                    .status,
                200
            );
        }
    }
}

fn wrong_password_and_unknown_email_answer_the_same(stores: Stores) {
    let srv = TestServer::on(stores);
    srv.register("known@example.com", "right-password");
    let a = srv.login("known@example.com", "wrong-password");
    let b = srv.login("unknown@example.com", "wrong-password");
    let pa = a.problem(401, "invalid_credentials");
    let pb = b.problem(401, "invalid_credentials");
    assert_eq!(pa["detail"], pb["detail"]);
    assert_eq!(a.header("www-authenticate"), b.header("www-authenticate"));
    assert!(a.header("www-authenticate").unwrap().starts_with("Bearer"));
    let ok = srv.login("KNOWN@example.com", "right-password");
    assert_eq!(ok.status, 200);
    assert!(ok.json()["access_token"].is_string());
}

fn repeated_failures_lock_the_account_until_time_passes(stores: Stores) {
    let srv = TestServer::on(stores);
    srv.register("lock@example.com", "right-password");
    for _ in 0..5 {
        srv.login("lock@example.com", "wrong-password")
            .problem(401, "invalid_credentials");
    }
    let locked = srv.login("lock@example.com", "right-password");
    locked.problem(429, "too_many_attempts");
    assert_eq!(locked.header("retry-after"), Some("60"));
    // Still locked a little later, with a shorter Retry-After.
    srv.clock.advance(Duration::from_secs(30));
    let locked = srv.login("lock@example.com", "right-password");
    locked.problem(429, "too_many_attempts");
    assert_eq!(locked.header("retry-after"), Some("30"));
    srv.clock.advance(Duration::from_secs(30));
    assert_eq!(srv.login("lock@example.com", "right-password").status, 200);
    // Unknown emails lock the same way (no enumeration through lockout).
    for _ in 0..5 {
        srv.login("nobody@example.com", "wrong-password")
            .problem(401, "invalid_credentials");
    }
    srv.login("nobody@example.com", "wrong-password")
        .problem(429, "too_many_attempts");
}

fn refresh_rotates_and_reuse_after_the_grace_window_revokes_the_session(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let reg = srv.register("rot@example.com", "password-1");
    let old = s(&reg["refresh_token"]).to_owned();
    let r = c.post_json("/v1/auth/refresh", &json!({"refresh_token": old}), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let t1 = r.json();
    let new = s(&t1["refresh_token"]).to_owned();
    assert_ne!(new, old);
    assert_eq!(t1["session_id"], reg["session_id"]);
    assert_eq!(
        c.get("/v1/users/me", Some(s(&t1["access_token"]))).status,
        200
    );
    // The old token fails at once (within the grace window, without harm).
    c.post_json("/v1/auth/refresh", &json!({"refresh_token": old}), None)
        .problem(401, "invalid_grant");
    assert_eq!(
        c.get("/v1/users/me", Some(s(&t1["access_token"]))).status,
        200
    );
    // The new one works and rotates again.
    let r = c.post_json("/v1/auth/refresh", &json!({"refresh_token": new}), None);
    assert_eq!(r.status, 200);
    let t2 = r.json();
    // After the grace window, presenting an old token revokes the whole session.
    srv.clock.advance(Duration::from_millis(2_001));
    c.post_json("/v1/auth/refresh", &json!({"refresh_token": old}), None)
        .problem(401, "invalid_grant");
    c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": s(&t2["refresh_token"])}),
        None,
    )
    .problem(401, "invalid_grant");
    let me = c.get("/v1/users/me", Some(s(&t2["access_token"])));
    let p = me.problem(401, "invalid_token");
    assert!(p["detail"].as_str().unwrap().contains("ended"), "{p}");
    // Other sessions of the user are unaffected.
    assert_eq!(srv.login("rot@example.com", "password-1").status, 200);
}

fn garbage_refresh_tokens_are_invalid_grant(stores: Stores) {
    let srv = TestServer::on(stores);
    for t in [
        "",
        "nope",
        "prt_AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        srv.client()
            .post_json("/v1/auth/refresh", &json!({"refresh_token": t}), None)
            .problem(401, "invalid_grant");
    }
}

fn logout_ends_the_session_at_once(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let reg = srv.register("out@example.com", "password-1");
    let access = s(&reg["access_token"]);
    assert_eq!(c.get("/v1/users/me", Some(access)).status, 200);
    let r = c.post_empty("/v1/auth/logout", Some(access));
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    c.get("/v1/users/me", Some(access))
        .problem(401, "invalid_token");
    c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": s(&reg["refresh_token"])}),
        None,
    )
    .problem(401, "invalid_grant");
    c.post_empty("/v1/auth/logout", Some(access))
        .problem(401, "invalid_token");
    c.post_empty("/v1/auth/logout", None)
        .problem(401, "missing_token");
}

fn logout_all_ends_every_session_of_the_user_only(stores: Stores) {
    let srv = TestServer::on(stores);
    let c = srv.client();
    let a = srv.register("all@example.com", "password-1");
    let b = srv.login("all@example.com", "password-1").json();
    let other = srv.register("other@example.com", "password-1");
    assert_eq!(
        c.post_empty("/v1/auth/logout-all", Some(s(&a["access_token"])))
            .status,
        204
    );
    for t in [&a, &b] {
        c.get("/v1/users/me", Some(s(&t["access_token"])))
            .problem(401, "invalid_token");
        c.post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": s(&t["refresh_token"])}),
            None,
        )
        .problem(401, "invalid_grant");
    }
    assert_eq!(
        c.get("/v1/users/me", Some(s(&other["access_token"])))
            .status,
        200
    );
}

fn access_tokens_expire(stores: Stores) {
    let srv = TestServer::on(stores);
    let reg = srv.register("exp@example.com", "password-1");
    srv.clock.advance(Duration::from_secs(899));
    assert_eq!(
        srv.client()
            .get("/v1/users/me", Some(s(&reg["access_token"])))
            .status,
        200
    );
    srv.clock.advance(Duration::from_secs(1));
    let r = srv
        .client()
        .get("/v1/users/me", Some(s(&reg["access_token"])));
    let p = r.problem(401, "invalid_token");
    assert!(p["detail"].as_str().unwrap().contains("expired"));
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // The session itself lives on: refresh gives a fresh access token.
    let t = srv.client().post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": s(&reg["refresh_token"])}),
        None,
    );
    assert_eq!(t.status, 200);
}

#[test]
fn per_ip_rate_limits_answer_429_with_retry_after() {
    let srv = TestServer::with(|_, edge| edge.ip_rate_limit = "1/h,burst=3".parse().unwrap());
    for _ in 0..3 {
        srv.login("rl@example.com", "password-1")
            .problem(401, "invalid_credentials");
    }
    let r = srv.login("rl@example.com", "password-1");
    r.problem(429, "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 1000, "{retry}");
    // Registration has its own budget.
    assert_eq!(
        srv.client()
            .post_json(
                "/v1/auth/register",
                &json!({"email": "rl2@example.com", "password": "password-1"}),
                None
            )
            .status,
        201
    );
}

#[test]
fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let untrusted = TestServer::with(|_, edge| edge.ip_rate_limit = "1/h,burst=1".parse().unwrap());
    let c = untrusted.client();
    let login = |xff: &str| {
        c.request(
            "POST",
            "/v1/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", xff),
            ],
            Some(br#"{"email":"x@example.com","password":"password-1"}"#),
        )
    };
    assert_eq!(login("198.51.100.1").status, 401);
    // A spoofed header does not buy a fresh budget from an untrusted peer.
    login("198.51.100.2").problem(429, "rate_limited");

    let trusted = TestServer::with(|_, edge| {
        edge.ip_rate_limit = "1/h,burst=1".parse().unwrap();
        edge.trusted_proxies = "127.0.0.0/8".parse().unwrap();
    });
    let c = trusted.client();
    let login = |xff: &str| {
        c.request(
            "POST",
            "/v1/auth/login",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", xff),
                ("User-Agent", "proxy-test"),
            ],
            Some(br#"{"email":"y@example.com","password":"password-1"}"#),
        )
    };
    assert_eq!(login("198.51.100.1").status, 401);
    assert_eq!(
        login("198.51.100.2").status,
        401,
        "each forwarded client has its own budget"
    );
    login("198.51.100.1").problem(429, "rate_limited");
    // The session records the forwarded address.
    trusted.register("ip@example.com", "password-1");
    let t = c
        .request(
            "POST",
            "/v1/auth/register",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", "203.0.113.77"),
            ],
            Some(br#"{"email":"ip2@example.com","password":"password-1"}"#),
        )
        .json();
    let sessions = c.get("/v1/sessions", Some(s(&t["access_token"]))).json();
    assert_eq!(sessions["sessions"][0]["ip"], "203.0.113.77");
}

on_every_store!(
    register_returns_the_user_and_a_working_session,
    a_taken_email_is_409_whatever_its_case,
    wrong_password_and_unknown_email_answer_the_same,
    repeated_failures_lock_the_account_until_time_passes,
    refresh_rotates_and_reuse_after_the_grace_window_revokes_the_session,
    garbage_refresh_tokens_are_invalid_grant,
    logout_ends_the_session_at_once,
    logout_all_ends_every_session_of_the_user_only,
    access_tokens_expire,
);
