//! Which account an identity signs in to: linking on a verified email on
//! both sides only, explicit links, unlinking, TOTP.

use serde_json::json;

use super::{Social, params, pkce};

const PW: &str = "correct horse battery staple";

fn verify_email(s: &Social, email: &str, access: &str) {
    let mut seen = Vec::new();
    let r = s
        .srv
        .client()
        .post_empty("/v1/email/verification", Some(access));
    assert_eq!(r.status, 202, "{}", r.text());
    let mail = s.srv.mail_containing(email, "token=pcv_", &mut seen);
    let token = crate::support::token_in(&mail, "pcv_");
    let r = s.srv.client().post_json(
        "/v1/email/verification/confirm",
        &json!({"token": token}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn an_email_links_only_when_verified_on_both_sides() {
    let s = Social::start();
    // The account's email is not verified: never linked (pre-account
    // hijacking), whatever the provider says.
    let reg = s.srv.register("bob@example.com", PW);
    s.sign_in("bob-at-corp", "bob@example.com", true)
        .problem(409, "account_exists");
    // Verified account, unverified at the provider: refused too.
    verify_email(&s, "bob@example.com", reg["access_token"].as_str().unwrap());
    s.sign_in("bob-at-corp", "bob@example.com", false)
        .problem(409, "account_exists");
    // Both verified: linked to the existing account.
    let r = s.sign_in("bob-at-corp", "bob@example.com", true);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["created"], false);
    assert_eq!(r.json()["user"]["id"], reg["user"]["id"]);
    // An unverified provider email for a new address makes an unverified account.
    let r = s.sign_in("carol", "carol@example.com", false).json();
    assert_eq!(
        (r["created"].clone(), r["user"]["email_verified"].clone()),
        (json!(true), json!(false))
    );
}

#[test]
fn a_signed_in_user_links_and_unlinks_a_provider() {
    let s = Social::start();
    let reg = s.srv.register("dave@example.com", PW);
    let access = reg["access_token"].as_str().unwrap();
    verify_email(&s, "dave@example.com", access);
    // The provider's email differs: only an explicit link attaches it.
    s.op.login_as("dave-corp", "dave.work@corp.example", true);
    let (v, c) = pkce("link");
    let r = s.srv.client().post_json(
        "/v1/users/me/identities",
        &json!({"code_challenge": c, "password": PW}),
        Some(access),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.json()["link_token"].as_str().unwrap().to_owned();
    // Never in a URL: a GET carrying it is refused (and does not spend it).
    let r = s.srv.client().get(
        &format!(
            "/v1/oauth/corp/authorize?redirect_uri={}&state=s&code_challenge={c}&code_challenge_method=S256&link_token={link}",
            super::urlencode(super::APP)
        ),
        None,
    );
    r.problem(400, "invalid_request");
    // A link token with another challenge (someone who read it somewhere): refused.
    let (_, other) = pkce("thief");
    s.authorize_form("s", &other, &link)
        .problem(400, "invalid_request");
    // It was spent by that attempt: get another, and use it rightly.
    let link = s
        .srv
        .client()
        .post_json(
            "/v1/users/me/identities",
            &json!({"code_challenge": c, "password": PW}),
            Some(access),
        )
        .json()["link_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (url, cookie) = s.authorize_link("st", &c, &link);
    let cb = s.at_provider(&url);
    let p = params(s.callback(&cb, Some(&cookie)).header("location").unwrap());
    let r = s.token(&p["code"], &v);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["id"], reg["user"]["id"]);
    let ids = s
        .srv
        .client()
        .get("/v1/users/me/identities", Some(access))
        .json();
    assert_eq!(ids["identities"][0]["email"], "dave.work@corp.example");
    // The owner is told (the verification letter was the first).
    let mut seen = Vec::new();
    s.srv.next_mail("dave@example.com", &mut seen);
    let notice = s.srv.next_mail("dave@example.com", &mut seen);
    assert!(
        notice.contains("A new way to sign in was added") && notice.contains("corp"),
        "{notice}"
    );
    // Signing in with the provider now reaches the same account.
    assert_eq!(
        s.sign_in("dave-corp", "dave.work@corp.example", true)
            .json()["user"]["id"],
        reg["user"]["id"]
    );
    // The account has a password: unlinking is allowed.
    let r = s.srv.client().request(
        "DELETE",
        "/v1/users/me/identities/corp",
        &[("Authorization", &format!("Bearer {access}"))],
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let notice = s.srv.next_mail("dave@example.com", &mut seen);
    assert!(notice.contains("A way to sign in was removed"), "{notice}");
    let ids = s
        .srv
        .client()
        .get("/v1/users/me/identities", Some(access))
        .json();
    assert_eq!(ids["identities"], json!([]));
    let r = s.srv.client().request(
        "DELETE",
        "/v1/users/me/identities/corp",
        &[("Authorization", &format!("Bearer {access}"))],
        None,
    );
    r.problem(404, "not_found");
    // And the identity is free again: it now makes a new account.
    assert_eq!(
        s.sign_in("dave-corp", "dave.work@corp.example", true)
            .json()["created"],
        true
    );
}

#[test]
fn the_last_way_to_sign_in_cannot_be_unlinked() {
    let s = Social::start();
    let r = s.sign_in("erin", "erin@example.com", true).json();
    let access = r["access_token"].as_str().unwrap();
    let del = s.srv.client().request(
        "DELETE",
        "/v1/users/me/identities/corp",
        &[("Authorization", &format!("Bearer {access}"))],
        None,
    );
    del.problem(409, "last_sign_in_method");
    let ids = s
        .srv
        .client()
        .get("/v1/users/me/identities", Some(access))
        .json();
    assert_eq!(ids["identities"].as_array().unwrap().len(), 1);
}

/// Pre-account hijacking: an attacker signs up first with a provider
/// account that claims the victim's address unverified.
#[test]
fn a_password_reset_takes_the_account_from_an_unverified_identity() {
    let s = Social::start();
    let r = s.sign_in("mallory", "victim@example.com", false);
    assert_eq!(r.json()["created"], true);
    // The victim proves the mailbox through a reset.
    let c = s.srv.client();
    let r = c.post_json(
        "/v1/password/forgot",
        &json!({"email": "victim@example.com"}),
        None,
    );
    assert_eq!(r.status, 202);
    let mut seen = Vec::new();
    let token = crate::support::token_in(&s.srv.next_mail("victim@example.com", &mut seen), "pcr_");
    let r = c.post_json(
        "/v1/password/reset",
        &json!({"token": token, "new_password": PW}),
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    // The attacker's identity is gone: signing in with it is refused...
    s.sign_in("mallory", "victim@example.com", false)
        .problem(409, "account_exists");
    // ...and the victim's account lists no identity.
    let access = s.srv.login("victim@example.com", PW).json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ids = c.get("/v1/users/me/identities", Some(&access)).json();
    assert_eq!(ids["identities"], json!([]));
}

/// The attacker's account gets its address verified (the victim clicks the
/// link): the victim's own verified provider sign-in is still not merged
/// into it.
#[test]
fn an_account_with_an_unverified_link_is_never_linked_by_email() {
    let s = Social::start();
    let r = s.sign_in("mallory", "victim@example.com", false).json();
    verify_email(
        &s,
        "victim@example.com",
        r["access_token"].as_str().unwrap(),
    );
    s.sign_in("victim-google", "victim@example.com", true)
        .problem(409, "account_exists");
}

/// An account with TOTP on still needs its second factor after a social
/// sign-in, and the session says how both steps were passed.
#[test]
fn a_social_sign_in_still_needs_the_second_factor() {
    use crate::mfa::{code, next_step, with_totp};
    let s = Social::start();
    let (access, secret, _) = with_totp(&s.srv, "tina@example.com");
    verify_email(&s, "tina@example.com", &access);
    let r = s.sign_in("tina-corp", "tina@example.com", true);
    assert_eq!(r.status, 200, "{}", r.text());
    let step = r.json();
    assert_eq!(step["mfa_required"], true, "{step}");
    assert!(step.get("access_token").is_none());
    next_step(&s.srv);
    let r = s.srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": step["mfa_token"], "code": code(&s.srv, &secret)}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let access = r.json()["access_token"].as_str().unwrap().to_owned();
    assert_eq!(super::claims(&access)["amr"], json!(["fed", "otp"]));
    // A password login's second step still says pwd.
    next_step(&s.srv);
    let t = crate::mfa::mfa_token(&s.srv, "tina@example.com");
    let r = s.srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": t, "code": code(&s.srv, &secret)}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        super::claims(r.json()["access_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp"])
    );
}

/// A social sign-in is a sign-in for the account's lock: while failures
/// from anywhere have locked the account, it is refused too.
#[test]
fn a_locked_account_refuses_social_sign_ins_too() {
    let s = Social::with(|e| e.account_lockout.max_failures = 2);
    let reg = s.srv.register("lou@example.com", PW);
    verify_email(&s, "lou@example.com", reg["access_token"].as_str().unwrap());
    assert_eq!(s.sign_in("lou-corp", "lou@example.com", true).status, 200);
    for _ in 0..2 {
        s.srv
            .login("lou@example.com", "wrong password 123")
            .problem(401, "invalid_credentials");
    }
    s.srv
        .login("lou@example.com", PW)
        .problem(429, "too_many_attempts");
    let r = s.sign_in("lou-corp", "lou@example.com", true);
    r.problem(429, "too_many_attempts");
    assert!(r.header("retry-after").is_some());
}

/// A stolen access token alone cannot attach the thief's provider account
/// (a way back in that outlives logout-all and password changes): linking
/// needs the current password.
#[test]
fn a_stolen_access_token_cannot_link_a_provider() {
    let s = Social::start();
    let reg = s.srv.register("vic@example.com", PW);
    let stolen = reg["access_token"].as_str().unwrap();
    verify_email(&s, "vic@example.com", stolen);
    let (_, c) = pkce("thief");
    let post = |body: serde_json::Value| {
        s.srv
            .client()
            .post_json("/v1/users/me/identities", &body, Some(stolen))
    };
    post(json!({"code_challenge": c})).problem(400, "invalid_request");
    post(json!({"code_challenge": c, "password": "a guessed password 1"}))
        .problem(401, "invalid_credentials");
    assert_eq!(
        post(json!({"code_challenge": c, "password": PW})).status,
        201
    );
}

/// Pre-account hijacking by linking: whoever registered an address they do
/// not own cannot attach their own (verified) provider account to it, so a
/// reset by the real owner leaves them nothing.
#[test]
fn an_account_with_an_unverified_email_cannot_link_a_provider() {
    let s = Social::start();
    let reg = s.srv.register("owner@example.com", PW);
    let (_, c) = pkce("squat");
    s.srv
        .client()
        .post_json(
            "/v1/users/me/identities",
            &json!({"code_challenge": c, "password": PW}),
            Some(reg["access_token"].as_str().unwrap()),
        )
        .problem(403, "email_not_verified");
}

/// An account without a password links only within minutes of signing in.
#[test]
fn a_passwordless_account_links_only_after_a_fresh_sign_in() {
    let s = Social::start();
    let r = s.sign_in("pat", "pat@example.com", true).json();
    let access = r["access_token"].as_str().unwrap().to_owned();
    let (_, c) = pkce("pat");
    let link = |access: &str| {
        s.srv.client().post_json(
            "/v1/users/me/identities",
            &json!({"code_challenge": c}),
            Some(access),
        )
    };
    assert_eq!(link(&access).status, 201);
    s.srv.clock.advance(std::time::Duration::from_secs(11 * 60));
    // A refreshed token keeps the session's sign-in time.
    let refreshed = s
        .srv
        .client()
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": r["refresh_token"]}),
            None,
        )
        .json();
    link(refreshed["access_token"].as_str().unwrap()).problem(401, "reauthentication_required");
}

/// A link never replaces the account's identity of the same provider.
#[test]
fn a_link_never_replaces_an_identity_of_the_same_provider() {
    let s = Social::start();
    let r = s.sign_in("first-corp", "quinn@example.com", true).json();
    let access = r["access_token"].as_str().unwrap().to_owned();
    s.op.login_as("second-corp", "quinn.other@example.com", true);
    let (v, c) = pkce("second");
    let link = s
        .srv
        .client()
        .post_json(
            "/v1/users/me/identities",
            &json!({"code_challenge": c}),
            Some(&access),
        )
        .json()["link_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (url, cookie) = s.authorize_link("st", &c, &link);
    let cb = s.at_provider(&url);
    let p = params(s.callback(&cb, Some(&cookie)).header("location").unwrap());
    s.token(&p["code"], &v).problem(409, "identity_exists");
    let ids = s
        .srv
        .client()
        .get("/v1/users/me/identities", Some(&access))
        .json();
    assert_eq!(ids["identities"].as_array().unwrap().len(), 1);
    assert_eq!(ids["identities"][0]["subject"], "first-corp");
    // The second identity was not left claimed: it signs up on its own.
    assert_eq!(
        s.sign_in("second-corp", "quinn.other@example.com", true)
            .json()["created"],
        true
    );
}
