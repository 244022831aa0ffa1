//! Attacks on the account flows, replayed over HTTP (issue "Hardening"):
//! each test is an attack that got in before the fix and must fail now.

use std::time::Duration;

use base64::Engine as _;
use portcullis_engine::config::Secret;
use portcullis_engine::hashpool::HashScheme;
use serde_json::{Value, json};

use crate::mfa::{code, mfa_token, next_step, with_totp, wrong};
use crate::support::*;

/// The claims of an access token (not verified: the server did that).
fn claims(access: &str) -> Value {
    let payload = access.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A server that believes `X-Forwarded-For` from 127.0.0.1, so a test can
/// speak as many client addresses.
fn behind_proxy(tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig)) -> TestServer {
    TestServer::with(|engine, edge| {
        edge.trusted_proxies = "127.0.0.1".parse().unwrap();
        tweak(engine, edge);
    })
}

use portcullis_edge::config::EdgeConfig;
use portcullis_engine::EngineConfig;

/// A password hash that takes a good fraction of a second to verify, so a
/// login can be caught in the middle: PBKDF2 with many iterations.
const SLOW: HashScheme = HashScheme::Pbkdf2Sha256 { i: 2_000_000 };

/// A user registered with a slow hash, on a server that hashes cheaply from
/// then on (so only this user's logins are slow). Returns the server, the
/// registration's body, and the password.
fn user_with_a_slow_hash(
    email: &str,
    tweak: impl FnOnce(&mut EngineConfig, &mut EdgeConfig),
) -> (TestServer, Value) {
    let first = TestServer::with(|e, _| e.password_hash = SLOW);
    let reg = first.register(email, "slow-password-1");
    let dir = first.stop();
    (TestServer::reopen(dir, tweak), reg)
}

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

// ---- 6. Nobody can lock the owner out ------------------------------------

#[test]
fn five_failures_from_one_address_do_not_stop_the_owner_elsewhere() {
    let srv = behind_proxy(|_, _| {});
    let c = srv.client();
    srv.register("pair@example.com", "password-1");
    let login = |ip: &str, pw: &str| {
        c.post_json_from(
            ip,
            "/v1/auth/login",
            &json!({"email": "pair@example.com", "password": pw}),
            None,
        )
    };
    for _ in 0..5 {
        login("203.0.113.66", "not-the-password").problem(401, "invalid_credentials");
    }
    login("203.0.113.66", "password-1").problem(429, "too_many_attempts");
    let r = login("198.51.100.7", "password-1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s(&r.json()["device_token"]).starts_with("pdt_"));
}

#[test]
fn a_thousand_failures_from_elsewhere_do_not_stop_an_owner_with_a_device_token() {
    let srv = behind_proxy(|_, _| {});
    let c = srv.client();
    srv.register("target@example.com", "password-1");
    let login = |ip: &str, pw: &str, device: Option<&str>| {
        let mut body = json!({"email": "target@example.com", "password": pw});
        if let Some(d) = device {
            body["device_token"] = json!(d);
        }
        c.post_json_from(ip, "/v1/auth/login", &body, None)
    };
    let r = login("198.51.100.20", "password-1", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let device = s(&r.json()["device_token"]).to_owned();
    // 1,000 wrong passwords from 200 addresses.
    let mut refused = 0;
    for i in 0..1000u32 {
        let ip = format!("203.0.{}.{}", 100 + i / 5 / 250, i / 5 % 250 + 1);
        let r = login(&ip, "guess-guess-guess", None);
        match r.status {
            401 => {}
            429 => refused += 1,
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(refused > 900, "the account-wide lock stops them: {refused}");
    // The owner's device is never stopped by them.
    let r = login("198.51.100.20", "password-1", Some(&device));
    assert_eq!(r.status, 200, "{}", r.text());
    // A client without a device token is, while the account is attacked.
    login("198.51.100.99", "password-1", None).problem(429, "too_many_attempts");
    // A device token keeps its own counter.
    let device = s(&r.json()["device_token"]).to_owned();
    for _ in 0..5 {
        login("198.51.100.20", "typo-typo-typo", Some(&device)).problem(401, "invalid_credentials");
    }
    login("198.51.100.20", "password-1", Some(&device)).problem(429, "too_many_attempts");
    // A device token of another account, or a forged one, is no escape.
    srv.register("other-acct@example.com", "password-2");
    let other = c.post_json_from(
        "198.51.100.21",
        "/v1/auth/login",
        &json!({"email": "other-acct@example.com", "password": "password-2"}),
        None,
    );
    let foreign = s(&other.json()["device_token"]).to_owned();
    login("198.51.100.21", "password-1", Some(&foreign)).problem(429, "too_many_attempts");
}

// ---- 7. Refusals for load never count ------------------------------------

#[test]
fn logins_refused_for_load_do_not_count_toward_the_lockout() {
    // Four accounts whose hashes take a while; one hash thread, one place
    // in its queue: at most two logins are taken at once.
    let first = TestServer::with(|e, _| e.password_hash = SLOW);
    let emails: Vec<String> = (0..4).map(|i| format!("loaded{i}@example.com")).collect();
    for e in &emails {
        first.register(e, "slow-password-1");
    }
    let srv = TestServer::reopen(first.stop(), |e, _| {
        e.hash_threads = 1;
        e.hash_queue = 1;
    });
    let addr = srv.addr;
    let tries: Vec<_> = emails
        .iter()
        .flat_map(|e| [e.clone(), e.clone()])
        .map(|email| {
            std::thread::spawn(move || {
                Client { addr }.post_json(
                    "/v1/auth/login",
                    &json!({"email": email, "password": "wrong-wrong-wrong"}),
                    None,
                )
            })
        })
        .collect();
    // A third login of one account at once waits for nobody: refused too.
    std::thread::sleep(Duration::from_millis(50));
    let third = srv.login(&emails[0], "wrong-wrong-wrong");
    assert!(
        matches!(third.status, 429 | 503),
        "{}: {}",
        third.status,
        third.text()
    );
    let mut overloaded = 0;
    for t in tries {
        let r = t.join().unwrap();
        match r.status {
            503 => {
                r.problem(503, "overloaded");
                assert!(r.header("retry-after").is_some());
                overloaded += 1;
            }
            401 => {}
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(overloaded >= 5, "{overloaded}");
    // Only the attempts the pool took were counted: every owner gets in.
    for e in &emails {
        let r = srv.login(e, "slow-password-1");
        assert_eq!(r.status, 200, "{e}: {}", r.text());
    }
}

#[test]
fn logins_of_one_account_beyond_two_at_once_are_refused_uncounted() {
    let (srv, _) = user_with_a_slow_hash("crowded@example.com", |_, _| {});
    let addr = srv.addr;
    let tries: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                Client { addr }.post_json(
                    "/v1/auth/login",
                    &json!({"email": "crowded@example.com", "password": "wrong-wrong-wrong"}),
                    None,
                )
            })
        })
        .collect();
    let statuses: Vec<u16> = tries
        .into_iter()
        .map(|t| {
            let r = t.join().unwrap();
            if r.status == 429 {
                r.problem(429, "too_many_requests");
            }
            r.status
        })
        .collect();
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    let r = srv.login("crowded@example.com", "slow-password-1");
    assert_eq!(r.status, 200, "{}", r.text());
}

// ---- 8. No mail bombing --------------------------------------------------

#[test]
fn verification_requests_send_one_mail_a_minute_per_account() {
    let srv = TestServer::start();
    let c = srv.client();
    let reg = srv.register("bombed@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    assert_eq!(
        c.post_empty("/v1/email/verification", Some(&access)).status,
        202
    );
    for _ in 0..39 {
        let r = c.post_empty("/v1/email/verification", Some(&access));
        r.problem(429, "too_many_requests");
        assert!(r.header("retry-after").is_some());
    }
    let mut seen = Vec::new();
    srv.next_mail("bombed@example.com", &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    let mails = std::fs::read_dir(srv.data_dir().join("mail"))
        .unwrap()
        .filter(|e| {
            let p = e.as_ref().unwrap().path();
            std::fs::read_to_string(&p).is_ok_and(|t| t.contains("To: bombed@example.com"))
        })
        .count();
    assert_eq!(mails, 1);
}

#[test]
fn nobody_can_bomb_an_address_with_email_change_links_from_many_accounts() {
    let srv = TestServer::start();
    let c = srv.client();
    let mut answers = Vec::new();
    for i in 0..4 {
        let email = format!("bomber{i}@example.com");
        let reg = srv.register(&email, "password-1");
        answers.push(
            c.post_json(
                "/v1/email/change",
                &json!({"new_email": "victim-inbox@example.com", "password": "password-1"}),
                Some(s(&reg["access_token"])),
            )
            .status,
        );
    }
    assert_eq!(answers, vec![202, 429, 429, 429]);
    // The forgot route is limited per address, whether or not it has an account.
    for email in ["someone@example.com", "nobody-here@example.com"] {
        let r = c.post_json("/v1/password/forgot", &json!({"email": email}), None);
        assert_eq!(r.status, 202);
        c.post_json("/v1/password/forgot", &json!({"email": email}), None)
            .problem(429, "too_many_requests");
    }
}

#[test]
fn a_full_outbox_refuses_new_mail_until_it_drains() {
    // A relay that refuses connections: messages stay queued and retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let srv = TestServer::with(|e, _| {
        e.account.outbox_max = 2;
        e.account.mailer_poll = Duration::from_millis(50);
        e.account.transport = Some(portcullis_engine::mail::transport::TransportConfig::Smtp(
            portcullis_engine::mail::transport::SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(port),
                security: portcullis_engine::mail::transport::SmtpSecurity::None,
                username: None,
                password: None,
                ca_file: None,
                timeout: Duration::from_secs(1),
            },
        ));
    });
    let c = srv.client();
    let mut status = Vec::new();
    for i in 0..2 {
        let reg = srv.register(&format!("queued{i}@example.com"), "password-1");
        status.push(
            c.post_empty("/v1/email/verification", Some(s(&reg["access_token"])))
                .status,
        );
    }
    assert_eq!(status, vec![202, 202]);
    let reg = srv.register("queued-last@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut last = 0;
    for _ in 0..100 {
        let r = c.post_empty("/v1/email/verification", Some(&access));
        last = r.status;
        if last == 503 {
            r.problem(503, "unavailable");
            break;
        }
        // The mailer has not counted the queue yet: the minute limit.
        srv.clock.advance(Duration::from_secs(61));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(last, 503);
}

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

// ---- 14. Recovery codes are not in the database in a usable form --------

#[test]
fn a_leaked_database_does_not_yield_the_recovery_codes() {
    let srv = TestServer::start();
    let (_, _, codes) = with_totp(&srv, "leak@example.com");
    let r = srv.login("leak@example.com", "password-1");
    let user = {
        let token = s(&r.json()["mfa_token"]).to_owned();
        // pcm_<user id, base64url>.<secret>
        let b64 = &token["pcm_".len()..token.find('.').unwrap()];
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(b64)
            .unwrap()
    };
    // What an attacker with the files would test guesses against: the
    // recovery codes' hashes, as they were stored before.
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|code| {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(b"portcullis/recovery-code/v1");
            ctx.update(&user);
            ctx.update(code.replace('-', "").as_bytes());
            ctx.finish().as_ref().to_vec()
        })
        .collect();
    let mut files = vec![srv.data_dir().to_owned()];
    let mut scanned = 0;
    while let Some(p) = files.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                files.push(e.unwrap().path());
            }
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        scanned += bytes.len();
        for h in &hashes {
            assert!(
                !bytes.windows(32).any(|w| w == h.as_slice()),
                "a recovery code hash is in {}",
                p.display()
            );
        }
    }
    assert!(scanned > 0);
}

// ---- 15. Data keys can be rotated and retired ----------------------------

#[test]
fn secrets_move_to_the_new_data_key_so_the_old_one_can_be_retired() {
    let old = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let new = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let srv = TestServer::with(|e, _| e.account.data_key = Some(Secret::new(old)));
    let (_, secret, codes) = with_totp(&srv, "rotate@example.com");
    let dir = srv.stop();
    // The new key first; the old one still opens until the pass is done.
    let srv = TestServer::reopen(dir, |e, _| {
        e.account.data_key = Some(Secret::new(format!("{new},{old}")));
        e.account.reseal_interval = Duration::from_millis(100);
    });
    let admin = Client { addr: srv.admin };
    let mut resealed = false;
    for _ in 0..100 {
        let m = admin.get("/metrics", None).text();
        if m.lines()
            .any(|l| l.starts_with("portcullis_datakey_resealed_total") && !l.ends_with(" 0"))
        {
            resealed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(resealed, "no record was re-sealed");
    let dir = srv.stop();
    // The old key retired: the authenticator and the recovery codes still work.
    let srv = TestServer::reopen(dir, |e, _| e.account.data_key = Some(Secret::new(new)));
    let c = srv.client();
    let token = mfa_token(&srv, "rotate@example.com");
    next_step(&srv);
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": code(&srv, &secret)}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let token = mfa_token(&srv, "rotate@example.com");
    let r = c.post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": token, "code": codes[0]}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
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

// ---- Found by an attacker's review of the fixes above ---------------------

#[test]
fn the_account_wide_lock_does_not_stop_a_signed_in_owner_changing_the_password() {
    let srv = behind_proxy(|_, _| {});
    let c = srv.client();
    let reg = srv.register("besieged@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    // Fifty failures from ten addresses lock the account for clients
    // without a device token.
    for i in 0..10 {
        for _ in 0..5 {
            c.post_json_from(
                &format!("203.0.113.{}", 100 + i),
                "/v1/auth/login",
                &json!({"email": "besieged@example.com", "password": "guess-guess-1"}),
                None,
            );
        }
    }
    c.post_json_from(
        "198.51.100.50",
        "/v1/auth/login",
        &json!({"email": "besieged@example.com", "password": "password-1"}),
        None,
    )
    .problem(429, "too_many_attempts");
    // The registration's device token gets the owner in through the siege.
    let r = c.post_json_from(
        "198.51.100.50",
        "/v1/auth/login",
        &json!({
            "email": "besieged@example.com",
            "password": "password-1",
            "device_token": s(&reg["device_token"]),
        }),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The owner's session proves a past sign-in: its password re-entry is
    // counted on its own, so the siege does not stop a password change.
    let r = c.post_json(
        "/v1/password/change",
        &json!({"current_password": "password-1", "new_password": "moved-on-secret-2"}),
        Some(&access),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(c.get("/v1/users/me", Some(&access)).status, 200);
}

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
