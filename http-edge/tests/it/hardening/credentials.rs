//! Credential events: a password reset or change voids pending links and
//! second steps, a login overlapping a reset or logout-all opens no session,
//! and weak passwords are refused.

use std::time::Duration;

use serde_json::json;

use super::user_with_a_slow_hash;
use crate::mfa::{code, mfa_token, next_step, with_totp};
use crate::support::*;

// ---- 2. Credential events void pending tokens ----------------------------

#[test]
fn a_pending_email_change_does_not_survive_a_password_reset() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("owner-ec@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut seen = Vec::new();
    // Someone holding the password and a session asks to move the account
    // to their own mailbox.
    let r = c.post_json(
        "/v1/email/change",
        &json!({"new_email": "thief-ec@example.com", "password": "password-1"}),
        Some(&access),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let stolen = token_in(&srv.next_mail("thief-ec@example.com", &mut seen), "pce_");
    // The owner resets the password from their mailbox.
    let r = c.post_json(
        "/v1/password/forgot",
        &json!({"email": "owner-ec@example.com"}),
        None,
    );
    assert_eq!(r.status, 202);
    let reset = token_in(&srv.next_mail("owner-ec@example.com", &mut seen), "pcr_");
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": reset, "new_password": "a-brand-new-secret"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    // The change link is dead: the account stays the owner's.
    c.post_json("/v1/email/change/confirm", &json!({"token": stolen}), None)
        .problem(400, "invalid_token");
    srv.login("thief-ec@example.com", "a-brand-new-secret")
        .problem(401, "invalid_credentials");
    let r = srv.login("owner-ec@example.com", "a-brand-new-secret");
    assert_eq!(r.status, 200, "{}", r.text());
    // The reset proved the mailbox: the address is verified.
    let me = c.get("/v1/users/me", Some(s(&r.json()["access_token"])));
    assert_eq!(me.json()["email"], "owner-ec@example.com");
    assert_eq!(me.json()["email_verified"], true);
}

#[test]
fn a_password_change_voids_pending_links_and_the_pending_second_step() {
    let srv = TestServer::start();
    let c = srv.client();
    let (access, secret, _) = with_totp(&srv, "voids@example.com");
    let mut seen = Vec::new();
    let r = c.post_empty("/v1/email/verification", Some(&access));
    assert_eq!(r.status, 202, "{}", r.text());
    let verify = token_in(
        &srv.mail_containing("voids@example.com", "token=pcv_", &mut seen),
        "pcv_",
    );
    let pending = mfa_token(&srv, "voids@example.com");
    let r = c.post_json(
        "/v1/password/change",
        &json!({"current_password": "password-1", "new_password": "second-secret-2"}),
        Some(&access),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    c.post_json(
        "/v1/email/verification/confirm",
        &json!({"token": verify}),
        None,
    )
    .problem(400, "invalid_token");
    next_step(&srv);
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": pending, "code": code(&srv, &secret)}),
        None,
    )
    .problem(401, "invalid_mfa");
}

// ---- 3. No session opens on credentials that were replaced meanwhile -----

#[test]
fn a_login_overlapping_a_reset_gets_no_session() {
    let (srv, _) = user_with_a_slow_hash("overlap@example.com", |_, _| {});
    let c = srv.client();
    let mut seen = Vec::new();
    assert_eq!(
        c.post_json(
            "/v1/password/forgot",
            &json!({"email": "overlap@example.com"}),
            None
        )
        .status,
        202
    );
    let reset = token_in(&srv.next_mail("overlap@example.com", &mut seen), "pcr_");
    // A login with the old password is being verified (slowly) ...
    let addr = srv.addr;
    let login = std::thread::spawn(move || {
        Client { addr }.post_json(
            "/v1/auth/login",
            &json!({"email": "overlap@example.com", "password": "slow-password-1"}),
            None,
        )
    });
    std::thread::sleep(Duration::from_millis(150));
    // ... while the owner resets the password, which ends every session.
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": reset, "new_password": "fresh-secret-after"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = login.join().unwrap();
    r.problem(401, "invalid_credentials");
    // The old password's verification did not write its upgraded hash
    // over the new one: the old password stays dead.
    srv.login("overlap@example.com", "slow-password-1")
        .problem(401, "invalid_credentials");
    // Only the new password opens sessions, and it is the only one open.
    let r = srv.login("overlap@example.com", "fresh-secret-after");
    assert_eq!(r.status, 200, "{}", r.text());
    let sessions = c.get("/v1/sessions", Some(s(&r.json()["access_token"])));
    assert_eq!(sessions.json()["sessions"].as_array().unwrap().len(), 1);
}

#[test]
fn a_login_overlapping_logout_all_gets_no_session() {
    let (srv, reg) = user_with_a_slow_hash("overlap-all@example.com", |_, _| {});
    let c = srv.client();
    let access = s(&reg["access_token"]).to_owned();
    let addr = srv.addr;
    let login = std::thread::spawn(move || {
        Client { addr }.post_json(
            "/v1/auth/login",
            &json!({"email": "overlap-all@example.com", "password": "slow-password-1"}),
            None,
        )
    });
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        c.post_empty("/v1/auth/logout-all", Some(&access)).status,
        204
    );
    let r = login.join().unwrap();
    r.problem(401, "invalid_credentials");
}

// ---- 18. Weak passwords are refused --------------------------------------

#[test]
fn common_passwords_and_the_email_name_are_refused() {
    let srv = TestServer::start();
    let c = srv.client();
    for (email, password) in [
        ("weak1@example.com", "iloveyou"),
        ("weak2@example.com", "Password1"),
        ("ada.lovelace@example.com", "ADA.lovelace.1815"),
    ] {
        let r = c.post_json(
            "/v1/auth/register",
            &json!({"email": email, "password": password}),
            None,
        );
        let p = r.problem(400, "weak_password");
        assert_eq!(p["errors"][0]["field"], "password", "{p}");
        // Nothing was created.
        srv.login(email, password)
            .problem(401, "invalid_credentials");
    }
    let reg = srv.register("strong@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let p = c
        .post_json(
            "/v1/password/change",
            &json!({"current_password": "password-1", "new_password": "qwertyuiop"}),
            Some(&access),
        )
        .problem(400, "weak_password");
    assert_eq!(p["errors"][0]["field"], "new_password");
    c.post_json(
        "/v1/password/forgot",
        &json!({"email": "strong@example.com"}),
        None,
    );
    let mut seen = Vec::new();
    let reset = token_in(&srv.next_mail("strong@example.com", &mut seen), "pcr_");
    c.post_json(
        "/v1/password/reset",
        &json!({"token": reset, "new_password": "strong-strong"}),
        None,
    )
    .problem(400, "weak_password");
    // The token is not used up by a refused password.
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": reset, "new_password": "a fine passphrase"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
}
