//! The clients' steps (register, login, refresh, `me`, password change,
//! passkey sign-in),
//! each one request that updates the user's tokens, and the users they run
//! as.

use serde_json::{Value, json};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, Url,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::run::User;
use crate::server::{Conn, Server, request};

pub(crate) fn seed(srv: &Server, n: usize, tag: &str) -> Vec<User> {
    let mut users = Vec::new();
    let mut conn = Conn::open(srv.api);
    for i in 0..n {
        let email = format!("bench-{tag}-{i}@example.com");
        let password = format!("bench-password-{i}");
        let (status, body) = conn.call(&request(
            "POST",
            "/v1/auth/register",
            Some(&json!({"email": email, "password": password})),
            None,
        ));
        assert_eq!(
            status,
            201,
            "seeding failed: {}",
            String::from_utf8_lossy(&body)
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        users.push(User {
            email,
            password,
            access: v["access_token"].as_str().unwrap().to_owned(),
            refresh: v["refresh_token"].as_str().unwrap().to_owned(),
            passkey: None,
        });
    }
    users
}

pub(crate) fn login_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/login",
        Some(&json!({"email": u.email, "password": u.password})),
        None,
    ));
    // Keep the newest session, as a client does: a user has at most 100,
    // and the least recently used end.
    if s == 200
        && let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let (Some(a), Some(r)) = (v["access_token"].as_str(), v["refresh_token"].as_str())
    {
        u.access = a.to_owned();
        u.refresh = r.to_owned();
    }
    s
}

pub(crate) fn refresh_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/refresh",
        Some(&json!({"refresh_token": u.refresh})),
        None,
    ));
    if s == 200 {
        let v: Value = serde_json::from_slice(&body).unwrap();
        u.refresh = v["refresh_token"].as_str().unwrap().to_owned();
        u.access = v["access_token"].as_str().unwrap().to_owned();
    }
    s
}

pub(crate) fn me_step(u: &mut User, c: &mut Conn) -> u16 {
    c.call(&request("GET", "/v1/users/me", None, Some(&u.access)))
        .0
}

pub(crate) fn register_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/register",
        Some(&json!({"email": u.email, "password": u.password})),
        None,
    ));
    if s == 201
        && let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let (Some(a), Some(r)) = (v["access_token"].as_str(), v["refresh_token"].as_str())
    {
        u.access = a.to_owned();
        u.refresh = r.to_owned();
    }
    s
}

pub(crate) fn change_password_step(u: &mut User, c: &mut Conn) -> u16 {
    let new = format!("{}-new", u.password);
    let (s, _) = c.call(&request(
        "POST",
        "/v1/password/change",
        Some(&json!({"current_password": u.password, "new_password": new})),
        Some(&u.access),
    ));
    if s == 204 {
        u.password = new;
    }
    s
}

/// Users not registered yet: `bench-scylla-<tag>-<i>@example.com`.
pub(crate) fn fresh_users(n: usize, tag: &str) -> Vec<User> {
    (0..n)
        .map(|i| User {
            email: format!("bench-scylla-{tag}-{i}@example.com"),
            password: format!("scylla-secret-{i}-pw"),
            access: String::new(),
            refresh: String::new(),
            passkey: None,
        })
        .collect()
}

/// A software authenticator holding one passkey, behind a page at the
/// server's default allowed origin.
pub(crate) struct Device {
    soft: SoftPasskey,
    id: String,
    user_handle: String,
}

const ORIGIN: &str = "http://localhost:8080";

fn json_of(status: u16, body: &[u8], want: u16, what: &str) -> Value {
    assert_eq!(
        status,
        want,
        "{what} failed: {}",
        String::from_utf8_lossy(body)
    );
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

/// The verification token mailed to `email` (the file mailer's `.eml`
/// files in the server's data directory).
fn mailed_token(srv: &Server, email: &str) -> String {
    let dir = srv._dir.path().join("mail");
    for _ in 0..200 {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let text = std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .replace("=\r\n", "")
                .replace("=\n", "");
            if text.contains(&format!("To: {email}"))
                && let Some(at) = text.find("pcv_")
            {
                return text[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .collect();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("no verification mail to {email}");
}

/// Verifies each user's email and registers a passkey for each (a
/// passkey needs a verified address).
pub(crate) fn enroll_passkeys(srv: &Server, users: &mut [User]) {
    let mut c = Conn::open(srv.api);
    for u in users.iter_mut() {
        let (s, b) = c.call(&request(
            "POST",
            "/v1/email/verification",
            None,
            Some(&u.access),
        ));
        json_of(s, &b, 202, "verification request");
        let token = mailed_token(srv, &u.email);
        let (s, b) = c.call(&request(
            "POST",
            "/v1/email/verification/confirm",
            Some(&json!({ "token": token })),
            None,
        ));
        json_of(s, &b, 200, "verification");
        let (s, b) = c.call(&request(
            "POST",
            "/v1/passkeys/register/start",
            Some(&json!({ "password": u.password })),
            Some(&u.access),
        ));
        let options = json_of(s, &b, 200, "passkey registration start");
        let user_handle = options["publicKey"]["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut soft = SoftPasskey::new(true);
        let cred = soft
            .do_registration(
                Url::parse(ORIGIN).unwrap(),
                serde_json::from_value::<CreationChallengeResponse>(options).unwrap(),
            )
            .unwrap();
        let cred = serde_json::to_value(&cred).unwrap();
        let id = cred["id"].as_str().unwrap().to_owned();
        let (s, b) = c.call(&request(
            "POST",
            "/v1/passkeys/register/finish",
            Some(&json!({ "credential": cred })),
            Some(&u.access),
        ));
        json_of(s, &b, 201, "passkey registration finish");
        u.passkey = Some(std::sync::Arc::new(std::sync::Mutex::new(Device {
            soft,
            id,
            user_handle,
        })));
    }
}

/// A passkey sign-in: start (options, `challenge_id`), the authenticator's
/// answer, finish (a session).
pub(crate) fn passkey_step(u: &mut User, c: &mut Conn) -> u16 {
    let (s, body) = c.call(&request("POST", "/v1/auth/passkey/start", None, None));
    if s != 200 {
        return s;
    }
    let mut options: Value = serde_json::from_slice(&body).unwrap();
    let challenge_id = options["challenge_id"].take();
    options.as_object_mut().unwrap().remove("challenge_id");
    let device = u.passkey.clone().expect("enroll_passkeys first");
    let mut d = device.lock().unwrap();
    // The software authenticator answers only for a listed credential; a
    // browser's would find its discoverable one.
    options["publicKey"]["allowCredentials"] = json!([{ "type": "public-key", "id": d.id }]);
    let rcr: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let mut cred = serde_json::to_value(
        d.soft
            .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
            .unwrap(),
    )
    .unwrap();
    cred["response"]["userHandle"] = json!(d.user_handle);
    drop(d);
    let (s, body) = c.call(&request(
        "POST",
        "/v1/auth/passkey/finish",
        Some(&json!({ "challenge_id": challenge_id, "credential": cred })),
        None,
    ));
    if s == 200
        && let Ok(v) = serde_json::from_slice::<Value>(&body)
        && let (Some(a), Some(r)) = (v["access_token"].as_str(), v["refresh_token"].as_str())
    {
        u.access = a.to_owned();
        u.refresh = r.to_owned();
    }
    s
}
