//! Secrets at rest: recovery codes are not stored in a usable form, and
//! data keys can be rotated and retired.

use std::time::Duration;

use base64::Engine as _;
use portcullis_engine::config::Secret;
use serde_json::json;

use crate::mfa::{code, mfa_token, next_step, with_totp};
use crate::support::*;

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
