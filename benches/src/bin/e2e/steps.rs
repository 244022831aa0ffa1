//! The clients' steps (register, login, refresh, `me`, password change),
//! each one request that updates the user's tokens, and the users they run
//! as.

use serde_json::{Value, json};

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
        })
        .collect()
}
