//! The lockout: nobody can lock the owner out, refusals for load never
//! count, and a signed-in owner can still change the password.

use std::time::Duration;

use serde_json::json;

use super::{SLOW, behind_proxy, user_with_a_slow_hash};
use crate::support::*;

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
