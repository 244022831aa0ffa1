//! The second factor: it cannot be guessed by signing in again and again,
//! turning it on or off needs the password, sessions keep it in `amr`, and
//! neither logout-all nor a reset lets a second step around its lock.

use std::time::Duration;

use serde_json::json;

use super::claims;
use crate::mfa::{code, mfa_token, next_step, with_totp, wrong};
use crate::support::*;

// ---- 1. The second factor cannot be brute-forced -------------------------

#[test]
fn the_second_factor_cannot_be_guessed_by_signing_in_again_and_again() {
    let srv = TestServer::start();
    let c = srv.client();
    let (_, secret, _) = with_totp(&srv, "guess-mfa@example.com");
    // The attacker knows the password: four wrong codes, then a fresh
    // mfa_token with the right password, then more codes. Before, each
    // right password cleared the counter of wrong codes: unbounded guessing.
    let token = mfa_token(&srv, "guess-mfa@example.com");
    for _ in 0..4 {
        c.post_json(
            "/v1/auth/login/mfa",
            &json!({"mfa_token": token, "code": wrong(&srv, &secret)}),
            None,
        )
        .problem(401, "invalid_mfa");
    }
    let token = mfa_token(&srv, "guess-mfa@example.com");
    // The fifth wrong code locks the second step and kills this mfa_token.
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": wrong(&srv, &secret)}),
        None,
    )
    .problem(401, "invalid_mfa");
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": code(&srv, &secret)}),
        None,
    );
    r.problem(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
    // Whatever the password does: a right password gets no new mfa_token.
    srv.login("guess-mfa@example.com", "password-1")
        .problem(429, "too_many_attempts");
    // After the lock, the token that saw the fifth wrong code stays dead.
    srv.clock.advance(Duration::from_secs(61));
    next_step(&srv);
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": code(&srv, &secret)}),
        None,
    )
    .problem(401, "invalid_mfa");
    // The owner signs in normally, which clears the counter.
    let token = mfa_token(&srv, "guess-mfa@example.com");
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": code(&srv, &secret)}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---- 4. MFA changes need the password ------------------------------------

#[test]
fn a_stolen_access_token_cannot_turn_mfa_on_or_off() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("stolen@example.com", "password-1");
    let stolen = s(&reg["access_token"]).to_owned();
    // The thief has only the access token.
    c.post_json("/v1/mfa/totp/enroll", &json!({}), Some(&stolen))
        .problem(400, "invalid_request");
    let r = c.post_json(
        "/v1/mfa/totp/enroll",
        &json!({"password": "a-guess-of-mine"}),
        Some(&stolen),
    );
    r.problem(401, "invalid_credentials");
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(
        c.get("/v1/users/me", Some(&stolen)).json()["mfa_enabled"],
        false
    );
    // The owner turns it on, and is told; turning it off needs the password too.
    let (access, secret, _) = with_totp(&srv, "owner-mfa@example.com");
    let mut seen = Vec::new();
    srv.mail_containing(
        "owner-mfa@example.com",
        "Subject: Two-step verification was turned on",
        &mut seen,
    );
    next_step(&srv);
    c.post_json(
        "/v1/mfa/totp/disable",
        &json!({"code": code(&srv, &secret)}),
        Some(&access),
    )
    .problem(400, "invalid_request");
    let r = c.post_json(
        "/v1/mfa/totp/disable",
        &json!({"code": code(&srv, &secret), "password": "password-1"}),
        Some(&access),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    srv.mail_containing(
        "owner-mfa@example.com",
        "Subject: Two-step verification was turned off",
        &mut seen,
    );
}

// ---- 5. A session keeps its amr and auth_time ----------------------------

#[test]
fn refresh_keeps_the_second_factor_in_amr_and_the_auth_time() {
    let srv = TestServer::start();
    let c = srv.client();
    let (_, secret, _) = with_totp(&srv, "amr@example.com");
    let token = mfa_token(&srv, "amr@example.com");
    next_step(&srv);
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": code(&srv, &secret)}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let first = claims(s(&r.json()["access_token"]));
    assert_eq!(first["amr"], json!(["pwd", "otp"]));
    let auth_time = first["auth_time"].as_u64().unwrap();
    srv.clock.advance(Duration::from_secs(600));
    let r = c.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": r.json()["refresh_token"]}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let after = claims(s(&r.json()["access_token"]));
    assert_eq!(after["amr"], json!(["pwd", "otp"]));
    assert_eq!(after["auth_time"].as_u64(), Some(auth_time));
    assert!(after["iat"].as_u64().unwrap() > auth_time);
}

// ---- Found by an attacker's review of the fixes above ---------------------

#[test]
fn logout_all_ends_a_second_step_begun_before_it() {
    let srv = TestServer::start();
    let c = srv.client();
    let (access, secret, _) = with_totp(&srv, "pending@example.com");
    // Someone with the password got this far...
    let pending = mfa_token(&srv, "pending@example.com");
    // ...and the owner signs out everywhere.
    assert_eq!(
        c.post_empty("/v1/auth/logout-all", Some(&access)).status,
        204
    );
    next_step(&srv);
    c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": pending, "code": code(&srv, &secret)}),
        None,
    )
    .problem(401, "invalid_mfa");
}

#[test]
fn a_reset_does_not_clear_the_second_step_lock() {
    let srv = TestServer::start();
    let c = srv.client();
    let (_, secret, _) = with_totp(&srv, "mailbox@example.com");
    // The mailbox's holder knows (resets) the password, not the code.
    let token = mfa_token(&srv, "mailbox@example.com");
    for _ in 0..5 {
        c.post_json(
            "/v1/auth/login/mfa",
            &json!({"mfa_token": token, "code": wrong(&srv, &secret)}),
            None,
        );
    }
    srv.login("mailbox@example.com", "password-1")
        .problem(429, "too_many_attempts");
    c.post_json(
        "/v1/password/forgot",
        &json!({"email": "mailbox@example.com"}),
        None,
    );
    let mut seen = Vec::new();
    let reset = token_in(
        &srv.mail_containing("mailbox@example.com", "token=pcr_", &mut seen),
        "pcr_",
    );
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": reset, "new_password": "fresh-secret-77"}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    // More guesses need the lock to pass: the reset gave none back.
    srv.login("mailbox@example.com", "fresh-secret-77")
        .problem(429, "too_many_attempts");
}

#[test]
fn turning_mfa_on_ends_the_other_sessions() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("other-sessions@example.com", "password-1");
    let thief = s(&reg["refresh_token"]).to_owned();
    let owner = srv.login("other-sessions@example.com", "password-1");
    let owner_access = s(&owner.json()["access_token"]).to_owned();
    let e = crate::mfa::enroll(&srv, &owner_access, "password-1").json();
    let secret = crate::mfa::base32_decode(s(&e["secret"]));
    let r = c.post_json(
        "/v1/mfa/totp/confirm",
        &json!({"code": code(&srv, &secret)}),
        Some(&owner_access),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The other session (a stolen refresh token, say) is over; the owner's stays.
    c.post_json("/v1/auth/refresh", &json!({"refresh_token": thief}), None)
        .problem(401, "invalid_grant");
    assert_eq!(c.get("/v1/users/me", Some(&owner_access)).status, 200);
}
