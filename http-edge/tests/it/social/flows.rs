//! The sign-in flows that work: the redirect dance, the code exchange, a
//! second sign-in, native apps' ID tokens, concurrency.

use serde_json::json;

use super::{Social, claims, params, pkce};

#[test]
fn a_new_identity_creates_an_account_then_signs_in_to_it() {
    let s = Social::start();
    let r = s.sign_in("alice", "Alice@Example.com", true);
    assert_eq!(r.status, 200, "{}", r.text());
    let first = r.json();
    assert_eq!(first["created"], true);
    assert_eq!(first["user"]["email"], "alice@example.com");
    assert_eq!(first["user"]["email_verified"], true);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["amr"], json!(["fed"]));
    assert!(first["refresh_token"].is_string() && first["device_token"].is_string());
    let me = s.srv.client().get("/v1/users/me", Some(access));
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["id"], first["user"]["id"]);
    let ids = s
        .srv
        .client()
        .get("/v1/users/me/identities", Some(access))
        .json();
    assert_eq!(ids["identities"].as_array().unwrap().len(), 1);
    assert_eq!(ids["identities"][0]["provider"], "corp");
    assert_eq!(ids["identities"][0]["subject"], "alice");
    // The account has no password: a password login fails like any wrong one.
    s.srv
        .login("alice@example.com", "")
        .problem(400, "invalid_request");
    s.srv
        .login("alice@example.com", "some password 123")
        .problem(401, "invalid_credentials");

    // Signing in again: the same account, not created.
    let again = s.sign_in("alice", "alice@example.com", true).json();
    // Counted by provider and outcome (the recorder is the process's: at
    // least this test's sign-ins).
    let metrics = crate::support::Client { addr: s.srv.admin }
        .get("/metrics", None)
        .text();
    for result in ["created", "ok"] {
        let line = metrics
            .lines()
            .find(|l| {
                l.starts_with("portcullis_engine_social_signins_total{")
                    && l.contains("provider=\"corp\"")
                    && l.contains(&format!("result=\"{result}\""))
            })
            .unwrap_or_else(|| panic!("no {result} series in {metrics}"));
        let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(n >= 1.0, "{line}");
    }
    assert_eq!(again["created"], false);
    assert_eq!(again["user"]["id"], first["user"]["id"]);
    // The refresh token of a social session rotates like any other.
    let rt = again["refresh_token"].as_str().unwrap();
    let refreshed =
        s.srv
            .client()
            .post_json("/v1/auth/refresh", &json!({"refresh_token": rt}), None);
    assert_eq!(refreshed.status, 200, "{}", refreshed.text());
    assert_eq!(
        claims(refreshed.json()["access_token"].as_str().unwrap())["amr"],
        json!(["fed"])
    );
}

#[test]
fn the_client_state_comes_back_and_the_cookie_is_cleared() {
    let s = Social::start();
    let (v, c) = pkce("st");
    let (url, cookie) = s.authorize("client-state/with spaces", &c, "");
    let at = params(&url);
    // Our own state, PKCE S256 and nonce toward the provider; never the client's.
    assert_eq!(at["code_challenge_method"], "S256");
    assert_ne!(at["code_challenge"], c);
    assert!(at["nonce"].len() >= 43 && at["state"].len() >= 43);
    let cb = s.at_provider(&url);
    let r = s.callback(&cb, Some(&cookie));
    assert_eq!(r.status, 302);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let p = params(r.header("location").unwrap());
    assert_eq!(p["state"], "client-state/with spaces");
    assert_eq!(s.token(&p["code"], &v).status, 200);
}

#[test]
fn a_native_app_signs_in_with_its_id_token_once() {
    let s = Social::start();
    s.op.login_as("nat", "nat@example.com", true);
    let token =
        s.op.forge(json!({"nonce": "n-123", "claims": {"aud": "ios-app"}}));
    let r = s.srv.client().post_json(
        "/v1/oauth/corp/id-token",
        &json!({"id_token": token, "nonce": "n-123"}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["created"], true);
    assert_eq!(r.json()["user"]["email"], "nat@example.com");
    // The same token again: refused.
    s.srv
        .client()
        .post_json(
            "/v1/oauth/corp/id-token",
            &json!({"id_token": token, "nonce": "n-123"}),
            None,
        )
        .problem(401, "invalid_id_token");
    // Nor in another encoding of the same signature (the last character's
    // unused bits changed): replay is judged on what was signed.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = token.chars().last().unwrap();
    let flipped = alphabet.as_bytes()[alphabet.find(last).unwrap() ^ 1] as char;
    let twin = format!("{}{flipped}", &token[..token.len() - 1]);
    assert_ne!(twin, token);
    s.srv
        .client()
        .post_json(
            "/v1/oauth/corp/id-token",
            &json!({"id_token": twin, "nonce": "n-123"}),
            None,
        )
        .problem(401, "invalid_id_token");
    // Another audience than ours or the configured apps': refused.
    let other =
        s.op.forge(json!({"nonce": "n-1", "claims": {"aud": "someone-else"}}));
    s.srv
        .client()
        .post_json(
            "/v1/oauth/corp/id-token",
            &json!({"id_token": other, "nonce": "n-1"}),
            None,
        )
        .problem(401, "invalid_id_token");
    s.srv
        .client()
        .post_json(
            "/v1/oauth/nope/id-token",
            &json!({"id_token": "x", "nonce": "n"}),
            None,
        )
        .problem(404, "unknown_provider");
}

#[test]
fn two_concurrent_first_sign_ins_of_one_identity_create_one_account() {
    let s = Social::start();
    s.op.login_as("twin", "twin@example.com", true);
    let (v1, c1) = pkce("one");
    let (v2, c2) = pkce("two");
    let code1 = s.round_trip("a", &c1)["code"].clone();
    let code2 = s.round_trip("b", &c2)["code"].clone();
    let (r1, r2) = std::thread::scope(|t| {
        let a = t.spawn(|| s.token(&code1, &v1));
        let b = t.spawn(|| s.token(&code2, &v2));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(
        (r1.status, r2.status),
        (200, 200),
        "{} {}",
        r1.text(),
        r2.text()
    );
    let (a, b) = (r1.json(), r2.json());
    assert_eq!(a["user"]["id"], b["user"]["id"]);
    let created: Vec<bool> = [&a, &b]
        .iter()
        .map(|x| x["created"].as_bool().unwrap())
        .collect();
    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
}

/// An account made by a social sign-in has no password until its owner
/// sets one through the reset flow; both ways in then work.
#[test]
fn a_social_account_adds_a_password_through_the_reset_flow() {
    let s = Social::start();
    let first = s.sign_in("rae", "rae@example.com", true).json();
    let c = s.srv.client();
    assert_eq!(
        c.post_json(
            "/v1/password/forgot",
            &json!({"email": "rae@example.com"}),
            None
        )
        .status,
        202
    );
    let mut seen = Vec::new();
    let token = crate::support::token_in(&s.srv.next_mail("rae@example.com", &mut seen), "pcr_");
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": token, "new_password": "a brand new passphrase"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let login = s.srv.login("rae@example.com", "a brand new passphrase");
    assert_eq!(login.status, 200, "{}", login.text());
    let access = login.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        c.get("/v1/users/me", Some(&access)).json()["id"],
        first["user"]["id"]
    );
    // The provider (its email verified) still signs in to the same account.
    let again = s.sign_in("rae", "rae@example.com", true).json();
    assert_eq!(again["user"]["id"], first["user"]["id"]);
}
