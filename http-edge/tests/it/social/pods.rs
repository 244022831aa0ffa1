//! Social login across pods that share a Redis Cluster token store and a
//! user store: any pod finishes what another started, and concurrent first
//! sign-ins on two pods make one account.

use std::sync::Arc;

use portcullis_engine::TokenStoreConfig;
use portcullis_engine::social::SocialConfig;
use portcullis_storage::embedded::EmbeddedStore;
use portcullis_storage::redis::fixture::RedisCluster;

use super::{APP, Op, Social, free_port, params, pkce};
use crate::support::{Client, TestServer};

/// Two pods behind one public address (pod `a`'s), and the provider.
fn two_pods() -> (Social, TestServer, tempfile::TempDir) {
    let cluster = RedisCluster::shared();
    let prefix = RedisCluster::unique_prefix("social");
    let dir = tempfile::tempdir().unwrap();
    let users = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let api = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let public = format!("http://{}", api.local_addr().unwrap());
    let op_port = free_port();
    let file = format!(
        "public_url = '{public}'\nredirect_uris = ['{APP}']\n[providers.corp]\n\
         issuer = 'http://127.0.0.1:{op_port}'\nclient_id = 'portcullis'\nclient_secret = 'op-secret'\n"
    );
    let social = SocialConfig::parse(&file, false, &|_| None).unwrap();
    // Pods seal flow state for each other: one data key, as in production.
    let cfg = |e: &mut portcullis_engine::EngineConfig| {
        e.account.social = social.clone();
        e.account.data_key = Some(portcullis_engine::config::Secret::new(
            crate::support::TEST_DATA_KEY,
        ));
    };
    let a = TestServer::pod_listening_on(
        users.clone(),
        TokenStoreConfig::RedisCluster(cluster.config(&prefix)),
        api,
        |e, _| cfg(e),
    );
    let b = TestServer::pod(
        users,
        TokenStoreConfig::RedisCluster(cluster.config(&prefix)),
        |e, _| cfg(e),
    );
    let op = Op::start(op_port, &format!("{public}/v1/oauth/corp/callback"));
    (Social { srv: a, op, public }, b, dir)
}

#[test]
fn a_sign_in_started_on_one_pod_finishes_on_another() {
    let (s, b, _dir) = two_pods();
    s.op.login_as("roamer", "roamer@example.com", true);
    let (v, c) = pkce("roam");
    let (url, cookie) = s.authorize("st", &c, "");
    let cb = s.at_provider(&url);
    // The browser's callback reaches pod b: the state is in the shared store.
    let path = cb.strip_prefix(&s.public).unwrap();
    let r = Client { addr: b.addr }.request("GET", path, &[("Cookie", &cookie)], None);
    assert_eq!(r.status, 302, "{}", r.text());
    let p = params(r.header("location").unwrap());
    // The app's code exchange reaches pod a.
    let r = s.token(&p["code"], &v);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["created"], true);
    // Replayed on pod b: the code was taken.
    Client { addr: b.addr }
        .post_json(
            "/v1/auth/social/token",
            &serde_json::json!({"code": p["code"], "code_verifier": v}),
            None,
        )
        .problem(401, "invalid_grant");
}

#[test]
fn concurrent_first_sign_ins_on_two_pods_make_one_account() {
    let (s, b, _dir) = two_pods();
    s.op.login_as("twin-pods", "twin-pods@example.com", true);
    let (v1, c1) = pkce("p1");
    let (v2, c2) = pkce("p2");
    let code1 = s.round_trip("a", &c1)["code"].clone();
    let code2 = s.round_trip("b", &c2)["code"].clone();
    let pod_b = Client { addr: b.addr };
    let (r1, r2) = std::thread::scope(|t| {
        let x = t.spawn(|| s.token(&code1, &v1));
        let y = t.spawn(|| {
            pod_b.post_json(
                "/v1/auth/social/token",
                &serde_json::json!({"code": code2, "code_verifier": v2}),
                None,
            )
        });
        (x.join().unwrap(), y.join().unwrap())
    });
    assert_eq!(
        (r1.status, r2.status),
        (200, 200),
        "{} {}",
        r1.text(),
        r2.text()
    );
    assert_eq!(r1.json()["user"]["id"], r2.json()["user"]["id"]);
    let created = [r1.json()["created"].clone(), r2.json()["created"].clone()];
    assert_eq!(
        created.iter().filter(|c| **c == true).count(),
        1,
        "{created:?}"
    );
}
