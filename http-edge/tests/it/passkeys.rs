//! Passkeys over HTTP, answered by `webauthn-authenticator-rs`'s software
//! authenticator acting as the browser and the device: registration,
//! sign-in with no email typed, the second step of a login, listing,
//! renaming and deleting; and each attack on the ceremonies (wrong origin,
//! wrong RP ID, a replayed or expired challenge, another user's
//! credential, a cloned authenticator, no user verification), each refused
//! with a stable problem code. On every store: the embedded one, a Redis
//! Cluster token store, and users in Apache Cassandra; and across two pods.
//! The example page runs in headless Chromium with a virtual authenticator.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::mfa::{code, mfa_token, with_totp};
use crate::social::claims;
use crate::support::{Resp, Stores, TestServer, on_every_store, s};

/// The page's origin the default settings allow.
const ORIGIN: &str = "http://localhost:8080";

/// A device holding passkeys, behind a browser at some origin.
pub(crate) struct Device {
    soft: SoftPasskey,
    /// Credential id and user handle of each passkey it made.
    made: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Device {
    pub(crate) fn new() -> Device {
        // `true`: it reports user verification when asked (a PIN or a
        // fingerprint on a real one).
        Device {
            soft: SoftPasskey::new(true),
            made: Vec::new(),
        }
    }

    /// `navigator.credentials.create()` at `origin` with the server's
    /// options (`edit` may change them first, as a malicious page could).
    pub(crate) fn create(
        &mut self,
        origin: &str,
        options: &Value,
        edit: impl FnOnce(&mut Value),
    ) -> Value {
        let mut options = options.clone();
        edit(&mut options);
        let user_handle = URL_SAFE_NO_PAD
            .decode(s(&options["publicKey"]["user"]["id"]))
            .unwrap();
        let ccr: CreationChallengeResponse = serde_json::from_value(options).unwrap();
        let cred = self
            .soft
            .do_registration(Url::parse(origin).unwrap(), ccr)
            .unwrap();
        self.made.push((cred.raw_id.to_vec(), user_handle));
        serde_json::to_value(&cred).unwrap()
    }

    /// `navigator.credentials.get()` at `origin` with the server's options,
    /// answered with passkey `which` (for a discoverable request the device
    /// picks it, and returns its user handle).
    pub(crate) fn get(
        &mut self,
        origin: &str,
        options: &Value,
        which: usize,
        edit: impl FnOnce(&mut Value),
    ) -> Value {
        let mut options = options.clone();
        options.as_object_mut().unwrap().remove("challenge_id");
        let (id, handle) = self.made[which].clone();
        let allow = &mut options["publicKey"]["allowCredentials"];
        let discoverable = allow.as_array().is_none_or(|a| a.is_empty());
        if discoverable {
            *allow = json!([{"type": "public-key", "id": URL_SAFE_NO_PAD.encode(&id)}]);
        }
        edit(&mut options);
        let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
        let mut cred = serde_json::to_value(
            self.soft
                .do_authentication(Url::parse(origin).unwrap(), rcr)
                .unwrap(),
        )
        .unwrap();
        if discoverable {
            cred["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(handle));
        }
        cred
    }
}

pub(crate) fn register_start(srv: &TestServer, access: &str, password: Option<&str>) -> Resp {
    let body = match password {
        Some(p) => json!({ "password": p }),
        None => json!({}),
    };
    srv.client()
        .post_json("/v1/passkeys/register/start", &body, Some(access))
}

/// Verifies the bearer's email through the mailed link (a passkey is
/// added only to an account whose address is proved).
pub(crate) fn verify_email(srv: &TestServer, access: &str) {
    let me = srv.client().get("/v1/users/me", Some(access)).json();
    if me["email_verified"] == true {
        return;
    }
    let email = s(&me["email"]).to_owned();
    let r = srv
        .client()
        .post_empty("/v1/email/verification", Some(access));
    assert_eq!(r.status, 202, "{}", r.text());
    let mail = srv.mail_containing(&email, "token=pcv_", &mut Vec::new());
    let token = crate::support::token_in(&mail, "pcv_");
    let r = srv.client().post_json(
        "/v1/email/verification/confirm",
        &json!({ "token": token }),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Registers a passkey of `device` for the bearer (password `password-1`;
/// the email is verified first).
pub(crate) fn add_passkey(
    srv: &TestServer,
    device: &mut Device,
    access: &str,
    name: &str,
) -> Value {
    add_passkey_at(srv, device, access, name, ORIGIN)
}

/// [`add_passkey`] from a page at `origin`.
pub(crate) fn add_passkey_at(
    srv: &TestServer,
    device: &mut Device,
    access: &str,
    name: &str,
    origin: &str,
) -> Value {
    verify_email(srv, access);
    let r = register_start(srv, access, Some("password-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    let cred = device.create(origin, &r.json(), |_| {});
    let r = srv.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"name": name, "credential": cred}),
        Some(access),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

/// `POST /v1/auth/login/mfa/passkey/start` for a login's `mfa_token`.
fn mfa_passkey_start(srv: &TestServer, mfa_token: &str) -> Resp {
    srv.client().post_json(
        "/v1/auth/login/mfa/passkey/start",
        &json!({ "mfa_token": mfa_token }),
        None,
    )
}

pub(crate) fn signin_start(srv: &TestServer) -> Value {
    let r = srv
        .client()
        .post_json("/v1/auth/passkey/start", &json!({}), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

pub(crate) fn signin_finish(srv: &TestServer, options: &Value, cred: &Value) -> Resp {
    srv.client().post_json(
        "/v1/auth/passkey/finish",
        &json!({"challenge_id": options["challenge_id"], "credential": cred}),
        None,
    )
}

/// `portcullis_engine_passkey_signins_total{result="cloned"}`.
fn cloned_count(srv: &TestServer) -> f64 {
    let metrics = crate::support::Client { addr: srv.admin }
        .get("/metrics", None)
        .text();
    metrics
        .lines()
        .find(|l| l.starts_with("portcullis_engine_passkey_signins_total{result=\"cloned\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"))
}

fn delete(srv: &TestServer, path: &str, access: &str) -> Resp {
    srv.client().request(
        "DELETE",
        path,
        &[("Authorization", &format!("Bearer {access}"))],
        None,
    )
}

fn passkeys(srv: &TestServer, access: &str) -> Vec<Value> {
    let r = srv.client().get("/v1/passkeys", Some(access));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["passkeys"].as_array().unwrap().clone()
}

fn with_passkey(srv: &TestServer, email: &str) -> (String, Device, Value) {
    let reg = srv.register(email, "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut device = Device::new();
    let added = add_passkey(srv, &mut device, &access, "Laptop");
    (access, device, added)
}

fn register_sign_in_rename_delete(stores: Stores) {
    let srv = TestServer::on(stores);
    let email = "pk-flow@example.com";
    let (access, mut device, added) = with_passkey(&srv, email);
    assert_eq!(added["name"], "Laptop");
    assert!(
        added["created_at"].is_string() && added["id"].is_string(),
        "{added}"
    );
    let mut seen = Vec::new();
    srv.mail_containing(email, "A passkey was added", &mut seen);

    // The options asked for what the issue names.
    let r = register_start(&srv, &access, Some("password-1"));
    let o = r.json();
    let sel = &o["publicKey"]["authenticatorSelection"];
    assert_eq!(sel["residentKey"], "preferred", "{o}");
    assert_eq!(sel["userVerification"], "required", "{o}");
    assert_eq!(o["publicKey"]["attestation"], "none", "{o}");
    assert_eq!(o["publicKey"]["rp"]["id"], "localhost", "{o}");
    // The account's passkey is excluded (no second registration of it).
    assert_eq!(
        o["publicKey"]["excludeCredentials"][0]["id"], added["id"],
        "{o}"
    );

    // Sign in with no email typed.
    let options = signin_start(&srv);
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(|a| a.is_empty())
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none());
    let cred = device.get(ORIGIN, &options, 0, |_| {});
    let r = signin_finish(&srv, &options, &cred);
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json();
    assert_eq!(claims(s(&t["access_token"]))["amr"], json!(["hwk", "user"]));
    assert!(t["device_token"].is_string() && t["refresh_token"].is_string());
    let pk_access = s(&t["access_token"]).to_owned();
    let me = srv.client().get("/v1/users/me", Some(&pk_access));
    assert_eq!(me.json()["email"], email);
    srv.mail_containing(email, "Your passkey was used to sign in", &mut seen);

    // The use is recorded; rename it.
    let list = passkeys(&srv, &pk_access);
    assert_eq!(list.len(), 1);
    assert!(list[0]["last_used_at"].is_string(), "{list:?}");
    assert_eq!(list[0]["backed_up"], false);
    let id = s(&list[0]["id"]).to_owned();
    let r = srv.client().send_json(
        "PATCH",
        &format!("/v1/passkeys/{id}"),
        &json!({"name": "  Work laptop "}),
        Some(&pk_access),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "Work laptop");
    assert_eq!(passkeys(&srv, &access)[0]["name"], "Work laptop");
    let r = srv.client().send_json(
        "PATCH",
        &format!("/v1/passkeys/{id}"),
        &json!({"name": ""}),
        Some(&pk_access),
    );
    r.problem(400, "invalid_request");
    let r = srv.client().send_json(
        "PATCH",
        "/v1/passkeys/bm90LW1pbmU",
        &json!({"name": "x"}),
        Some(&pk_access),
    );
    r.problem(404, "not_found");

    // A fresh passkey session registers a second one without the password.
    let r = register_start(&srv, &pk_access, None);
    assert_eq!(r.status, 200, "{}", r.text());
    let cred = device.create(ORIGIN, &r.json(), |_| {});
    let r = srv.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"credential": cred}),
        Some(&pk_access),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["name"], "Passkey");
    // A password session needs the password.
    register_start(&srv, &access, None).problem(400, "invalid_request");
    register_start(&srv, &access, Some("wrong-password")).problem(401, "invalid_credentials");

    // Delete both (the password remains a way in), then signing in with
    // the deleted one fails.
    for p in passkeys(&srv, &access) {
        let r = delete(&srv, &format!("/v1/passkeys/{}", s(&p["id"])), &access);
        assert_eq!(r.status, 204, "{}", r.text());
    }
    srv.mail_containing(email, "A passkey was removed", &mut seen);
    assert!(passkeys(&srv, &access).is_empty());
    let options = signin_start(&srv);
    let cred = device.get(ORIGIN, &options, 0, |_| {});
    signin_finish(&srv, &options, &cred).problem(401, "invalid_passkey");
}

fn a_passkey_is_a_second_factor(stores: Stores) {
    let srv = TestServer::on(stores);
    let email = "pk-mfa@example.com";
    let (access, secret, _) = with_totp(&srv, email);
    let mut device = Device::new();
    add_passkey(&srv, &mut device, &access, "Key");

    // Password, then the passkey in place of a code.
    let mfa = mfa_token(&srv, email);
    let r = mfa_passkey_start(&srv, &mfa);
    assert_eq!(r.status, 200, "{}", r.text());
    let options = r.json();
    let allowed = options["publicKey"]["allowCredentials"].as_array().unwrap();
    assert_eq!(allowed.len(), 1);
    let cred = device.get(ORIGIN, &options, 0, |_| {});
    // Both a code and a passkey, or neither: refused.
    let r = srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": mfa, "code": "123456", "passkey_credential": cred}),
        None,
    );
    r.problem(400, "invalid_request");
    let r = srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": mfa, "passkey_credential": cred}),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        claims(s(&r.json()["access_token"]))["amr"],
        json!(["pwd", "hwk"])
    );
    // The mfa_token is spent.
    let r = srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": mfa, "code": code(&srv, &secret)}),
        None,
    );
    r.problem(401, "invalid_mfa");

    // A passkey sign-in needs no second step, TOTP on or not.
    let options = signin_start(&srv);
    let cred = device.get(ORIGIN, &options, 0, |_| {});
    let r = signin_finish(&srv, &options, &cred);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.json()["access_token"].is_string());
    assert!(r.json().get("mfa_required").is_none());

    // Another account's second-step challenge, or its passkey, does not
    // pass this account's second step.
    let other = "pk-mfa-other@example.com";
    let (other_access, _, _) = with_totp(&srv, other);
    let mut other_device = Device::new();
    add_passkey(&srv, &mut other_device, &other_access, "Other");
    let mine = mfa_token(&srv, email);
    let theirs = mfa_token(&srv, other);
    let r = mfa_passkey_start(&srv, &theirs);
    let their_cred = other_device.get(ORIGIN, &r.json(), 0, |_| {});
    let r = srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": mine, "passkey_credential": their_cred}),
        None,
    );
    r.problem(401, "invalid_mfa");

    // A second step started before a sign-in holds the passkey as it was:
    // an answer whose counter the sign-in has passed since (a copy of the
    // authenticator answering late) is still refused.
    let mfa = mfa_token(&srv, email);
    let r = mfa_passkey_start(&srv, &mfa);
    assert_eq!(r.status, 200, "{}", r.text());
    let stale_options = r.json();
    let signin = signin_start(&srv);
    let stale = device.get(ORIGIN, &stale_options, 0, |_| {});
    let fresh = device.get(ORIGIN, &signin, 0, |_| {});
    assert_eq!(signin_finish(&srv, &signin, &fresh).status, 200);
    let r = srv.client().post_json(
        "/v1/auth/login/mfa",
        &json!({"mfa_token": mfa, "passkey_credential": stale}),
        None,
    );
    r.problem(401, "invalid_mfa");

    // Each start keeps a ceremony: bounded per account.
    let limited = (0..12).find_map(|_| {
        let r = mfa_passkey_start(&srv, &mfa);
        (r.status != 200).then_some(r)
    });
    limited
        .expect("the per-account limit answers within 12 starts")
        .problem(429, "too_many_requests");
}

#[test]
fn an_unverified_address_gets_no_passkey() {
    // Pre-account hijacking: someone registers the victim's address with a
    // password of their own and adds their authenticator; the victim's
    // password reset later would not remove it. Refused until the mailbox
    // is proved.
    let srv = TestServer::start();
    let reg = srv.register("pk-unverified@example.com", "password-1");
    let access = s(&reg["access_token"]).to_owned();
    register_start(&srv, &access, Some("password-1")).problem(403, "email_not_verified");
    assert!(passkeys(&srv, &access).is_empty());
    // Once the owner has proved the mailbox, it works.
    let mut device = Device::new();
    add_passkey(&srv, &mut device, &access, "Laptop");
    assert_eq!(passkeys(&srv, &access).len(), 1);
}

#[test]
fn a_passwordless_account_keeps_its_last_way_in() {
    // An account made by a provider sign-in has no password.
    let social = crate::social::Social::start();
    let srv = &social.srv;
    let r = social.sign_in("pat", "pat@example.com", true);
    assert_eq!(r.status, 200, "{}", r.text());
    let access = s(&r.json()["access_token"]).to_owned();
    // Its fresh sign-in stands in for the password it does not have.
    let r = register_start(srv, &access, None);
    assert_eq!(r.status, 200, "{}", r.text());
    let mut device = Device::new();
    let cred = device.create(ORIGIN, &r.json(), |_| {});
    let r = srv.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"name": "Phone", "credential": cred}),
        Some(&access),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = s(&r.json()["id"]).to_owned();
    // The passkey is a way in: the provider may go now.
    let r = delete(srv, "/v1/users/me/identities/corp", &access);
    assert_eq!(r.status, 204, "{}", r.text());
    // And the passkey, now the last way in, may not.
    let r = delete(srv, &format!("/v1/passkeys/{id}"), &access);
    r.problem(409, "last_sign_in_method");
    assert_eq!(passkeys(srv, &access).len(), 1);
    // It signs in.
    let o = signin_start(srv);
    let cred = device.get(ORIGIN, &o, 0, |_| {});
    let r = signin_finish(srv, &o, &cred);
    assert_eq!(r.status, 200, "{}", r.text());
    // A sign-in older than ten minutes registers nothing more.
    srv.clock.advance(Duration::from_secs(11 * 60));
    register_start(srv, &access, None).problem(401, "reauthentication_required");
}

fn attacks_on_the_ceremonies_are_refused(stores: Stores) {
    // A site on its own domain (the software client, like a browser,
    // allows http only on localhost).
    const ORIGIN: &str = "https://example.test";
    let srv = TestServer::on_with(stores, |engine, _| {
        engine.account.passkeys = portcullis_engine::passkeys::PasskeyConfig::parse(
            "example.test",
            "https://example.test,https://app.example.test",
            "Portcullis",
        )
        .unwrap();
    });
    let email = "pk-attacks@example.com";
    let reg = srv.register(email, "password-1");
    let access = s(&reg["access_token"]).to_owned();
    let mut device = Device::new();
    add_passkey_at(&srv, &mut device, &access, "Laptop", ORIGIN);
    let finish_reg = |cred: &Value| {
        srv.client().post_json(
            "/v1/passkeys/register/finish",
            &json!({"credential": cred}),
            Some(&access),
        )
    };
    let reg_options = || {
        let r = register_start(&srv, &access, Some("password-1"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };

    // Wrong origin: a phishing page (on a sibling host the RP ID covers,
    // so the browser lets it ask) relays the server's options.
    let cred = device.create("https://evil.example.test", &reg_options(), |_| {});
    finish_reg(&cred).problem(400, "invalid_passkey");
    let o = signin_start(&srv);
    let cred = device.get("https://evil.example.test", &o, 0, |_| {});
    signin_finish(&srv, &o, &cred).problem(401, "invalid_passkey");

    // Wrong RP ID: an allowed page asks for a credential of another RP ID.
    let cred = device.create("https://app.example.test", &reg_options(), |o| {
        o["publicKey"]["rp"]["id"] = json!("app.example.test");
    });
    finish_reg(&cred).problem(400, "invalid_passkey");
    let o = signin_start(&srv);
    let cred = device.get("https://app.example.test", &o, 0, |o| {
        o["publicKey"]["rpId"] = json!("app.example.test");
    });
    signin_finish(&srv, &o, &cred).problem(401, "invalid_passkey");

    // No user verification: the device (or a page editing the options)
    // skips it; the server requires it.
    let cred = device.create(ORIGIN, &reg_options(), |o| {
        o["publicKey"]["authenticatorSelection"]["userVerification"] = json!("discouraged");
    });
    finish_reg(&cred).problem(400, "invalid_passkey");
    let o = signin_start(&srv);
    let cred = device.get(ORIGIN, &o, 0, |o| {
        o["publicKey"]["userVerification"] = json!("discouraged");
    });
    signin_finish(&srv, &o, &cred).problem(401, "invalid_passkey");

    // Replayed: an answer that signed in once does not sign in again, nor
    // does a registration answer register twice.
    let o = signin_start(&srv);
    let cred = device.get(ORIGIN, &o, 0, |_| {});
    assert_eq!(signin_finish(&srv, &o, &cred).status, 200);
    signin_finish(&srv, &o, &cred).problem(401, "invalid_passkey");
    let options = reg_options();
    let cred = device.create(ORIGIN, &options, |_| {});
    assert_eq!(finish_reg(&cred).status, 201);
    finish_reg(&cred).problem(400, "invalid_passkey");
    // The answer to one sign-in's challenge does not finish another's.
    let o1 = signin_start(&srv);
    let o2 = signin_start(&srv);
    let cred = device.get(ORIGIN, &o1, 0, |_| {});
    signin_finish(&srv, &o2, &cred).problem(401, "invalid_passkey");

    // Expired: five minutes later the challenge is gone.
    let o = signin_start(&srv);
    let cred = device.get(ORIGIN, &o, 0, |_| {});
    srv.clock.advance(Duration::from_secs(301));
    signin_finish(&srv, &o, &cred).problem(401, "invalid_passkey");
    let options = reg_options();
    let cred = device.create(ORIGIN, &options, |_| {});
    srv.clock.advance(Duration::from_secs(301));
    // (the access token is 15 minutes old now: still valid)
    finish_reg(&cred).problem(400, "invalid_passkey");

    // Another user's credential: the victim's user handle with the
    // attacker's own passkey does not sign in to the victim's account.
    let attacker = srv.register("pk-attacker@example.com", "password-1");
    let mut evil = Device::new();
    add_passkey_at(
        &srv,
        &mut evil,
        s(&attacker["access_token"]),
        "Mine",
        ORIGIN,
    );
    let victim_handle = device.made[0].1.clone();
    let o = signin_start(&srv);
    let mut cred = evil.get(ORIGIN, &o, 0, |_| {});
    cred["response"]["userHandle"] = json!(URL_SAFE_NO_PAD.encode(&victim_handle));
    signin_finish(&srv, &o, &cred).problem(401, "invalid_passkey");
    // Nor does a registration started by one session finish on another
    // session of the same account (a stolen token that saw the challenge).
    let other_session = srv.login(email, "password-1").json();
    let cred = device.create(ORIGIN, &reg_options(), |_| {});
    let r = srv.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"credential": cred}),
        Some(s(&other_session["access_token"])),
    );
    r.problem(400, "invalid_passkey");
    // Nor does a registration started by one account finish on another.
    let cred = device.create(ORIGIN, &reg_options(), |_| {});
    let r = srv.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"credential": cred}),
        Some(s(&attacker["access_token"])),
    );
    r.problem(400, "invalid_passkey");

    // A cloned authenticator: two answers of the same passkey, the later
    // counter used first; the earlier one then goes backwards.
    let mut seen = Vec::new();
    let before = cloned_count(&srv);
    let o1 = signin_start(&srv);
    let o2 = signin_start(&srv);
    let first = device.get(ORIGIN, &o1, 0, |_| {});
    let second = device.get(ORIGIN, &o2, 0, |_| {});
    assert_eq!(signin_finish(&srv, &o2, &second).status, 200);
    signin_finish(&srv, &o1, &first).problem(401, "invalid_passkey");
    srv.mail_containing(email, "possibly copied passkey", &mut seen);
    // Reported (the metrics recorder is shared by this process's servers:
    // the count grew).
    assert!(cloned_count(&srv) > before);
    // The genuine passkey still signs in (its counter moves on).
    let o = signin_start(&srv);
    let cred = device.get(ORIGIN, &o, 0, |_| {});
    assert_eq!(signin_finish(&srv, &o, &cred).status, 200);

    // Garbage in place of a credential: 400/401 with a code, never a 500.
    for bad in [
        json!({}),
        json!({"id": "x", "rawId": "!!", "type": "public-key", "response": {}}),
        json!({"id": "AA", "rawId": "AA", "type": "public-key", "response": {"authenticatorData": "AA", "clientDataJSON": "AA", "signature": "AA", "userHandle": "AA"}}),
    ] {
        let r = signin_finish(&srv, &o, &bad);
        assert!(
            r.status == 400 || r.status == 401,
            "{bad}: {} {}",
            r.status,
            r.text()
        );
        let code = r.json()["code"].as_str().unwrap().to_owned();
        assert!(
            code == "invalid_request" || code == "invalid_passkey",
            "{code}"
        );
        let r = finish_reg(&bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    let r = srv.client().post_json(
        "/v1/auth/passkey/finish",
        &json!({"challenge_id": "x", "credential": "not an object"}),
        None,
    );
    r.problem(400, "invalid_request");
    // Of all the registrations above, the two accepted ones were kept
    // (the first, and the one whose replay was refused): nothing refused
    // left a passkey behind.
    assert_eq!(passkeys(&srv, &access).len(), 2);
}

on_every_store!(
    register_sign_in_rename_delete,
    a_passkey_is_a_second_factor,
    attacks_on_the_ceremonies_are_refused,
);

#[test]
fn passkeys_work_in_headless_chromium_with_a_virtual_authenticator() {
    let app_port = crate::social::free_port();
    let srv = TestServer::with(|engine, _| {
        engine.account.passkeys = portcullis_engine::passkeys::PasskeyConfig::parse(
            "localhost",
            &format!("http://localhost:{app_port}"),
            "Portcullis",
        )
        .unwrap();
    });
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/passkeys/index.html")
        .canonicalize()
        .unwrap();
    let email = "browser-passkey@example.com";
    let reg = srv.register(email, "correct horse battery staple");
    verify_email(&srv, s(&reg["access_token"]));
    let report = crate::support::run_browser_script(
        "passkeys.mjs",
        &[
            (
                "PORTCULLIS",
                format!("http://127.0.0.1:{}", srv.addr.port()),
            ),
            ("APP_PORT", app_port.to_string()),
            ("EXAMPLE", example.display().to_string()),
            (
                "OUT_DIR",
                crate::support::browser_output_dir().display().to_string(),
            ),
            ("EMAIL", email.to_owned()),
        ],
    );
    // Registered as a discoverable credential on the authenticator.
    assert_eq!(report["listed"], 1, "{report}");
    assert_eq!(report["resident"], json!([true]), "{report}");
    // Signed in with no email typed: the passkey alone, user verified.
    assert!(
        s(&report["passkey_signin"]).contains(&format!("Signed in as {email}")),
        "{report}"
    );
    assert_eq!(report["passkey_amr"], json!(["hwk", "user"]), "{report}");
    // The second step of a password login.
    assert_eq!(report["totp"], json!([200, 200]), "{report}");
    assert_eq!(
        report["second_factor_amr"],
        json!(["pwd", "hwk"]),
        "{report}"
    );
    // Deleted: listed no more, and refused at sign-in.
    assert_eq!(report["after_delete"], 0, "{report}");
    assert!(
        s(&report["deleted_signin"]).starts_with("invalid_passkey"),
        "{report}"
    );
    // Each use moved the sign counter (the server checks it).
    assert!(report["sign_count"][0].as_u64().unwrap() >= 2, "{report}");
    // The page talked to its own origin only.
    assert_eq!(
        report["hosts"],
        json!([format!("localhost:{app_port}")]),
        "{report}"
    );
    // And the server agrees the passkey is gone.
    let r = srv.login(email, "correct horse battery staple");
    assert_eq!(r.json()["mfa_required"], true);
}

#[test]
fn a_ceremony_started_on_one_pod_finishes_on_another() {
    use portcullis_storage::embedded::EmbeddedStore;
    use portcullis_storage::redis::fixture::RedisCluster;
    // Two pods: one Redis Cluster token store, one user store, one data key.
    let cluster = RedisCluster::shared();
    let prefix = RedisCluster::unique_prefix("passkeys");
    let dir = tempfile::tempdir().unwrap();
    let users = std::sync::Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let pod = |users: std::sync::Arc<EmbeddedStore>| {
        TestServer::pod(
            users,
            portcullis_engine::TokenStoreConfig::RedisCluster(cluster.config(&prefix)),
            |e, _| {
                e.account.data_key = Some(portcullis_engine::config::Secret::new(
                    crate::support::TEST_DATA_KEY,
                ));
            },
        )
    };
    let (a, b) = (pod(users.clone()), pod(users));
    let email = "pk-pods@example.com";
    let reg = a.register(email, "password-1");
    let access = s(&reg["access_token"]).to_owned();
    verify_email(&a, &access);
    let mut device = Device::new();

    // Registration: started on a, finished on b.
    let r = register_start(&a, &access, Some("password-1"));
    assert_eq!(r.status, 200, "{}", r.text());
    let cred = device.create(ORIGIN, &r.json(), |_| {});
    let r = b.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"name": "Roaming", "credential": cred}),
        Some(&access),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // And not a second time on a.
    let r = a.client().post_json(
        "/v1/passkeys/register/finish",
        &json!({"credential": cred}),
        Some(&access),
    );
    r.problem(400, "invalid_passkey");

    // Sign-in: started on b, finished on a; replayed on b, refused.
    let o = signin_start(&b);
    let cred = device.get(ORIGIN, &o, 0, |_| {});
    let r = signin_finish(&a, &o, &cred);
    assert_eq!(r.status, 200, "{}", r.text());
    signin_finish(&b, &o, &cred).problem(401, "invalid_passkey");
    // Both pods see the use.
    assert!(passkeys(&b, &access)[0]["last_used_at"].is_string());
}
