//! Attacks on the account flows, replayed over HTTP (issue "Hardening"):
//! each test is an attack that got in before the fix and must fail now.
//!
//! The attacks are grouped by subject in the modules below; this module
//! holds the helpers they share.

mod credentials;
mod limits;
mod lockout;
mod mail;
mod second_factor;
mod secrets;

use base64::Engine as _;
use portcullis_edge::config::EdgeConfig;
use portcullis_engine::EngineConfig;
use portcullis_engine::hashpool::HashScheme;
use serde_json::Value;

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
