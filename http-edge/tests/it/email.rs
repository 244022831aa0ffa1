//! Email verification over HTTP, reading the messages the file mailer writes.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn server(stores: Stores) -> TestServer {
    TestServer::on_with(stores, |e, _| {
        e.account.mailer_poll = Duration::from_millis(20)
    })
}

fn a_user_verifies_their_address_with_the_mailed_link_once(stores: Stores) {
    let srv = server(stores);
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

fn only_the_latest_unexpired_token_of_this_flow_is_accepted(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("latest@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut seen = Vec::new();
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    let first = token_in(&srv.next_mail("latest@example.com", &mut seen), "pcv_");
    // One message a minute per flow and account.
    srv.clock.advance(Duration::from_secs(61));
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

fn confirm_bodies_are_validated(stores: Stores) {
    let srv = server(stores);
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

fn an_email_change_moves_the_account_once_confirmed_from_the_new_address(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("old@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    srv.register("taken@example.com", "password-2");
    let change = |new: &str, pw: &str| {
        c.post_json(
            "/v1/email/change",
            &json!({"new_email": new, "password": pw}),
            Some(&access),
        )
    };
    change("new@example.com", "wrong-password").problem(401, "invalid_credentials");
    change("taken@example.com", "password-1").problem(409, "email_taken");
    let p = change("OLD@example.com", "password-1").problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "new_email");
    let r = change("new@example.com", "password-1");
    assert_eq!(r.status, 202, "{}", r.text());

    // Nothing changes before the confirmation.
    assert_eq!(srv.login("old@example.com", "password-1").status, 200);
    let mut seen = Vec::new();
    let mail = srv.next_mail("new@example.com", &mut seen);
    assert!(mail.contains("/confirm-email-change?token=pce_"), "{mail}");
    let token = token_in(&mail, "pce_");
    // A token of this flow does not verify, and vice versa.
    c.post_json(
        "/v1/email/verification/confirm",
        &json!({"token": token}),
        None,
    )
    .problem(400, "invalid_token");

    let r = c.post_json("/v1/email/change/confirm", &json!({"token": token}), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["email"], "new@example.com");
    assert_eq!(r.json()["email_verified"], true);
    // The index moved: the new address signs in, the old one is free.
    assert_eq!(srv.login("new@example.com", "password-1").status, 200);
    srv.login("old@example.com", "password-1")
        .problem(401, "invalid_credentials");
    assert_eq!(
        srv.register("old@example.com", "password-3")["user"]["email"],
        "old@example.com"
    );
    // Single use; and the old address is told.
    c.post_json("/v1/email/change/confirm", &json!({"token": token}), None)
        .problem(400, "invalid_token");
    let notice = srv.next_mail("old@example.com", &mut seen);
    assert!(
        notice.contains("Subject: Your sign-in address was changed"),
        "{notice}"
    );
    assert!(notice.contains("new@example.com"));
}

fn an_email_change_loses_to_a_registration_that_took_the_address_first(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("first@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let r = c.post_json(
        "/v1/email/change",
        &json!({"new_email": "race@example.com", "password": "password-1"}),
        Some(&access),
    );
    assert_eq!(r.status, 202);
    let mut seen = Vec::new();
    let token = token_in(&srv.next_mail("race@example.com", &mut seen), "pce_");
    srv.register("race@example.com", "password-2");
    c.post_json("/v1/email/change/confirm", &json!({"token": token}), None)
        .problem(409, "email_taken");
    assert_eq!(srv.login("first@example.com", "password-1").status, 200);
}

on_every_store!(
    a_user_verifies_their_address_with_the_mailed_link_once,
    only_the_latest_unexpired_token_of_this_flow_is_accepted,
    confirm_bodies_are_validated,
    an_email_change_moves_the_account_once_confirmed_from_the_new_address,
    an_email_change_loses_to_a_registration_that_took_the_address_first,
);
