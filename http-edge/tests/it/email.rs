//! Email verification over HTTP, reading the messages the file mailer writes.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn server() -> TestServer {
    TestServer::with(|e, _| e.account.mailer_poll = Duration::from_millis(20))
}

#[test]
fn a_user_verifies_their_address_with_the_mailed_link_once() {
    let srv = server();
    let c = srv.client();
    let reg = srv.register("verify@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    assert_eq!(reg["user"]["email_verified"], false);

    let r = c.post_empty("/v1/email/verification", Some(&access));
    assert_eq!(r.status, 202, "{}", r.text());
    let mut seen = Vec::new();
    let mail = srv.next_mail("verify@example.com", &mut seen);
    assert!(
        mail.contains("Subject: Confirm your email address"),
        "{mail}"
    );
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    assert!(
        mail.contains("http://localhost:8080/verify-email?token=pcv_"),
        "{mail}"
    );
    let token = token_in(&mail, "pcv_");

    let r = c.post_json(
        "/v1/email/verification/confirm",
        &json!({"token": token}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["email_verified"], true);
    assert_eq!(
        c.get("/v1/users/me", Some(&access)).json()["email_verified"],
        true
    );

    // Single use.
    let r = c.post_json(
        "/v1/email/verification/confirm",
        &json!({"token": token}),
        None,
    );
    r.problem(400, "invalid_token");
    // Nothing more to verify.
    let r = c.post_empty("/v1/email/verification", Some(&access));
    r.problem(409, "already_verified");
    // Authenticated only.
    let r = c.post_empty("/v1/email/verification", None);
    r.problem(401, "missing_token");
}

#[test]
fn only_the_latest_unexpired_token_of_this_flow_is_accepted() {
    let srv = server();
    let c = srv.client();
    let reg = srv.register("latest@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut seen = Vec::new();
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    let first = token_in(&srv.next_mail("latest@example.com", &mut seen), "pcv_");
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    let second = token_in(&srv.next_mail("latest@example.com", &mut seen), "pcv_");
    assert_ne!(first, second);

    let confirm =
        |t: &str| c.post_json("/v1/email/verification/confirm", &json!({"token": t}), None);
    // Replaced by the second request.
    confirm(&first).problem(400, "invalid_token");
    // Tampered, of another flow, or not a token at all.
    let mut tampered = second.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    confirm(&tampered).problem(400, "invalid_token");
    confirm(&second.replacen("pcv_", "pcr_", 1)).problem(400, "invalid_token");
    confirm("not-a-token").problem(400, "invalid_token");
    // Expired after 24 h (the server's clock is injected).
    srv.clock.advance(Duration::from_secs(24 * 3600 + 1));
    confirm(&second).problem(400, "invalid_token");
    let me = c.post_json(
        "/v1/auth/login",
        &json!({"email": "latest@example.com", "password": "password-1"}),
        None,
    );
    let access = s(&me.json()["access_token"]).to_owned();
    assert_eq!(
        c.get("/v1/users/me", Some(&access)).json()["email_verified"],
        false
    );
}

#[test]
fn confirm_bodies_are_validated() {
    let srv = server();
    let c = srv.client();
    c.post_json("/v1/email/verification/confirm", &json!({}), None)
        .problem(400, "invalid_request");
    c.post_json("/v1/email/verification/confirm", &json!({"token": 7}), None)
        .problem(400, "invalid_request");
    c.post_json(
        "/v1/email/verification/confirm",
        &json!({"token": "x", "extra": 1}),
        None,
    )
    .problem(400, "invalid_request");
}
