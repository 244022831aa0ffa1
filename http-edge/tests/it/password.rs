//! Password forgot and reset over HTTP, reading the file mailer's messages.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

fn server(stores: Stores) -> TestServer {
    TestServer::on_with(stores, |e, _| {
        e.account.mailer_poll = Duration::from_millis(20)
    })
}

fn mail_count(srv: &TestServer) -> usize {
    std::fs::read_dir(srv.data_dir().join("mail"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            })
            .count()
        })
        .unwrap_or(0)
}

fn forgot_answers_202_for_any_address_and_mails_only_accounts(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    srv.register("forgot@example.com", "password-1");
    for email in [
        "forgot@example.com",
        "FORGOT@example.com ",
        "ghost@example.com",
    ] {
        let r = c.post_json("/v1/password/forgot", &json!({"email": email}), None);
        assert_eq!(r.status, 202, "{email}: {}", r.text());
        assert!(r.text().is_empty());
        // One message a minute per address.
        srv.clock.advance(Duration::from_secs(61));
    }
    let mut seen = Vec::new();
    let mail = srv.next_mail("forgot@example.com", &mut seen);
    assert!(mail.contains("Subject: Reset your password"), "{mail}");
    assert!(mail.contains("/reset-password?token=pcr_"));
    srv.next_mail("forgot@example.com", &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        mail_count(&srv),
        2,
        "nothing is sent for an address without an account"
    );
    c.post_json(
        "/v1/password/forgot",
        &json!({"email": "not an email"}),
        None,
    )
    .problem(400, "invalid_request");
}

fn a_reset_changes_the_password_signs_out_everywhere_and_clears_the_lockout(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("reset@example.com", "old-password");
    let old_access = s(&reg["access_token"]).to_owned();
    let old_refresh = s(&reg["refresh_token"]).to_owned();
    assert_eq!(srv.login("reset@example.com", "old-password").status, 200);
    // Lock the account with wrong passwords.
    for _ in 0..5 {
        srv.login("reset@example.com", "wrong-password");
    }
    srv.login("reset@example.com", "old-password")
        .problem(429, "too_many_attempts");

    assert_eq!(
        c.post_json(
            "/v1/password/forgot",
            &json!({"email": "reset@example.com"}),
            None
        )
        .status,
        202
    );
    let mut seen = Vec::new();
    let token = token_in(&srv.next_mail("reset@example.com", &mut seen), "pcr_");
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": token, "new_password": "new-password"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());

    // Every session is gone; the old password is dead; the lock is cleared.
    c.get("/v1/users/me", Some(&old_access))
        .problem(401, "invalid_token");
    c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": old_refresh}),
        None,
    )
    .problem(401, "invalid_grant");
    srv.login("reset@example.com", "old-password")
        .problem(401, "invalid_credentials");
    assert_eq!(srv.login("reset@example.com", "new-password").status, 200);
    // Single use; and the owner is told.
    c.post_json(
        "/v1/password/reset",
        &json!({"token": token, "new_password": "third-password"}),
        None,
    )
    .problem(400, "invalid_token");
    let notice = srv.next_mail("reset@example.com", &mut seen);
    assert!(
        notice.contains("Subject: Your password was changed"),
        "{notice}"
    );
}

fn reset_tokens_expire_belong_to_their_flow_and_need_a_valid_password(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("expiry@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut seen = Vec::new();
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    let verify_token = token_in(&srv.next_mail("expiry@example.com", &mut seen), "pcv_");
    c.post_json(
        "/v1/password/forgot",
        &json!({"email": "expiry@example.com"}),
        None,
    );
    let token = token_in(&srv.next_mail("expiry@example.com", &mut seen), "pcr_");

    let reset = |t: &str, p: &str| {
        c.post_json(
            "/v1/password/reset",
            &json!({"token": t, "new_password": p}),
            None,
        )
    };
    let r = reset(&token, "short");
    let p = r.problem(400, "invalid_request");
    assert_eq!(p["errors"][0]["field"], "new_password", "{p}");
    reset(&verify_token, "long-enough-1").problem(400, "invalid_token");
    srv.clock.advance(Duration::from_secs(30 * 60 + 1));
    reset(&token, "long-enough-1").problem(400, "invalid_token");
    assert_eq!(srv.login("expiry@example.com", "password-1").status, 200);
}

fn a_password_change_keeps_this_session_and_ends_the_others(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("change@example.com", "old-password");
    let this = s(&reg["access_token"]).to_owned();
    let other = srv.login("change@example.com", "old-password").json();
    let other_refresh = s(&other["refresh_token"]).to_owned();

    let change = |current: &str, new: &str| {
        c.post_json(
            "/v1/password/change",
            &json!({"current_password": current, "new_password": new}),
            Some(&this),
        )
    };
    change("wrong-password", "new-password").problem(401, "invalid_credentials");
    let r = change("old-password", "x");
    assert_eq!(
        r.problem(400, "invalid_request")["errors"][0]["field"],
        "new_password"
    );
    let r = change("old-password", "new-password");
    assert_eq!(r.status, 204, "{}", r.text());

    assert_eq!(
        c.get("/v1/users/me", Some(&this)).status,
        200,
        "this session stays"
    );
    c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": other_refresh}),
        None,
    )
    .problem(401, "invalid_grant");
    srv.login("change@example.com", "old-password")
        .problem(401, "invalid_credentials");
    assert_eq!(srv.login("change@example.com", "new-password").status, 200);
    let mut seen = Vec::new();
    let notice = srv.next_mail("change@example.com", &mut seen);
    assert!(
        notice.contains("Subject: Your password was changed"),
        "{notice}"
    );
    c.post_json(
        "/v1/password/change",
        &json!({"current_password": "new-password", "new_password": "newer-password"}),
        None,
    )
    .problem(401, "missing_token");
}

fn wrong_current_passwords_lock_the_change_like_logins(stores: Stores) {
    let srv = server(stores);
    let c = srv.client();
    let reg = srv.register("guess@example.com", "the-password");
    let access = s(&reg["access_token"]).to_owned();
    for _ in 0..5 {
        c.post_json(
            "/v1/password/change",
            &json!({"current_password": "guess-guess", "new_password": "new-password"}),
            Some(&access),
        )
        .problem(401, "invalid_credentials");
    }
    let r = c.post_json(
        "/v1/password/change",
        &json!({"current_password": "the-password", "new_password": "new-password"}),
        Some(&access),
    );
    r.problem(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
}

on_every_store!(
    forgot_answers_202_for_any_address_and_mails_only_accounts,
    a_reset_changes_the_password_signs_out_everywhere_and_clears_the_lockout,
    reset_tokens_expire_belong_to_their_flow_and_need_a_valid_password,
    a_password_change_keeps_this_session_and_ends_the_others,
    wrong_current_passwords_lock_the_change_like_logins,
);
