//! Discovery, keys, OpenAPI, probes, metrics, overload.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use portcullis_engine::hashpool::HashScheme;
use serde_json::{Value, json};

use crate::support::*;

#[test]
fn jwks_publishes_the_signing_key_and_its_successor() {
    let srv = TestServer::start();
    let c = srv.client();
    let r = c.get("/.well-known/jwks.json", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("public, max-age=300"));
    let keys = r.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "current and next key");
    for k in &keys {
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "EdDSA");
        assert!(k["kid"].is_string());
    }
    // Verify a real token with the published key, as a resource server would.
    let reg = srv.register("jwks@example.com", "password-1");
    let token = s(&reg["access_token"]);
    let (signed, sig) = token.rsplit_once('.').unwrap();
    let header: Value =
        serde_json::from_slice(&B64.decode(signed.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "EdDSA");
    let key = keys
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signing key is published");
    let public = B64.decode(s(&key["x"])).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(signed.as_bytes(), &B64.decode(sig).unwrap())
        .expect("signature verifies with the JWKS key");
    let claims: Value =
        serde_json::from_slice(&B64.decode(signed.split('.').nth(1).unwrap()).unwrap()).unwrap();
    for claim in ["iss", "aud", "sub", "sid", "jti", "iat", "exp"] {
        assert!(!claims[claim].is_null(), "{claim} missing: {claims}");
    }
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    assert_eq!(claims["amr"], json!(["pwd"]));
}

#[test]
fn discovery_document_points_at_real_endpoints() {
    let srv = TestServer::with(|engine, edge| {
        engine.issuer = "https://auth.example.com".into();
        edge.issuer = "https://auth.example.com".into();
    });
    let doc = srv
        .client()
        .get("/.well-known/openid-configuration", None)
        .json();
    assert_eq!(doc["issuer"], "https://auth.example.com");
    assert_eq!(
        doc["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
    assert_eq!(
        doc["introspection_endpoint"],
        "https://auth.example.com/v1/oauth/introspect"
    );
    assert_eq!(
        doc["revocation_endpoint"],
        "https://auth.example.com/v1/oauth/revoke"
    );
    let reg = srv.register("iss@example.com", "password-1");
    let claims: Value = serde_json::from_slice(
        &B64.decode(s(&reg["access_token"]).split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], "https://auth.example.com");
}

#[test]
fn openapi_describes_exactly_the_served_routes() {
    let srv = TestServer::start();
    let doc = srv.client().get("/openapi.json", None).json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = portcullis_edge::api::ENDPOINTS
        .iter()
        .map(|e| (e.method.to_owned(), e.path.to_owned()))
        .collect();
    assert_eq!(documented, served);
    // Every documented error response uses the problem schema and content type.
    let problem = doc["paths"]["/v1/auth/login"]["post"]["responses"]["401"]["content"]["application/problem+json"].clone();
    assert!(
        problem["schema"]["$ref"]
            .as_str()
            .unwrap()
            .ends_with("/Problem"),
        "{problem}"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// The served OpenAPI document is the committed `docs/openapi.json`, byte
/// for byte: a change of the HTTP contract is a deliberate edit of that file,
/// never a side effect of moving code.
#[test]
fn openapi_document_is_the_committed_contract() {
    let srv = TestServer::start();
    let served = srv.client().get("/openapi.json", None).body;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    let committed = std::fs::read(path).unwrap_or_default();
    if served != committed {
        let out = std::env::temp_dir().join("portcullis-openapi.served.json");
        std::fs::write(&out, &served).unwrap();
        panic!(
            "the served OpenAPI document differs from docs/openapi.json; if the change is deliberate, copy {} there (diff it first)",
            out.display()
        );
    }
}

#[test]
fn probes_and_metrics() {
    let srv = TestServer::start();
    let c = srv.client();
    assert_eq!(c.get("/healthz", None).json(), json!({"status": "ok"}));
    let ready = c.get("/readyz", None);
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    let admin = Client { addr: srv.admin };
    assert_eq!(admin.get("/healthz", None).status, 200);
    assert_eq!(
        admin.get("/readyz", None).json()["checks"]["signing_keys"],
        true
    );
    srv.register("metrics@example.com", "password-1");
    srv.login("metrics@example.com", "wrong-password");
    let m = admin.get("/metrics", None);
    assert_eq!(m.status, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    let text = m.text();
    for name in [
        "portcullis_http_requests_total",
        "portcullis_http_request_duration_seconds_bucket",
        "portcullis_engine_registrations_total",
        "portcullis_engine_logins_total",
        "portcullis_hash_duration_seconds_bucket",
        "portcullis_store_operation_duration_seconds_bucket",
        "portcullis_build_info",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    // The API port does not serve metrics.
    c.get("/metrics", None).problem(404, "not_found");
    admin.get("/v1/users/me", None).problem(404, "not_found");
}

#[test]
fn a_saturated_hash_pool_answers_503_overloaded() {
    // One slow hashing thread and room for one waiting job.
    let srv = TestServer::with(|engine, _| {
        engine.password_hash = HashScheme::Argon2id {
            m: 16 * 1024,
            t: 4,
            p: 1,
        };
        engine.hash_threads = 1;
        engine.hash_queue = 1;
    });
    let c = srv.client();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            std::thread::spawn(move || {
                c.post_json(
                    "/v1/auth/login",
                    &json!({"email": format!("load{i}@example.com"), "password": "password-1"}),
                    None,
                )
            })
        })
        .collect();
    let mut overloaded = 0;
    for h in handles {
        let r = h.join().unwrap();
        match r.status {
            401 => {}
            503 => {
                r.problem(503, "overloaded");
                assert_eq!(r.header("retry-after"), Some("1"));
                overloaded += 1;
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    assert!(overloaded >= 5, "only {overloaded} of 10 were refused");
    let m = Client { addr: srv.admin }.get("/metrics", None).text();
    assert!(m.contains("portcullis_hash_rejected_total"));
}

#[test]
fn operator_managed_keys_sign_from_signing_pem_and_publish_the_rest() {
    let keys = tempfile::tempdir().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pem = |der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    };
    let public = |der: &[u8]| {
        use ring::signature::KeyPair as _;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).unwrap();
        B64.encode(pair.public_key().as_ref())
    };
    let signing = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let next = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    std::fs::write(keys.path().join("signing.pem"), pem(signing.as_ref())).unwrap();
    std::fs::write(keys.path().join("next.pem"), pem(next.as_ref())).unwrap();
    let dir = keys.path().to_owned();
    let srv = TestServer::with(move |e, _| e.signing_keys_dir = Some(dir));
    let c = srv.client();
    let published = c.get("/.well-known/jwks.json", None).json()["keys"]
        .as_array()
        .unwrap()
        .clone();
    let xs: BTreeSet<&str> = published.iter().map(|k| s(&k["x"])).collect();
    let (signing_x, next_x) = (public(signing.as_ref()), public(next.as_ref()));
    assert_eq!(xs, BTreeSet::from([signing_x.as_str(), next_x.as_str()]));
    // Tokens are signed by signing.pem, never by the published next key.
    let reg = srv.register("operator-keys@example.com", "password-1");
    let token = s(&reg["access_token"]);
    let header: Value =
        serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let signer = published
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .unwrap();
    assert_eq!(s(&signer["x"]), signing_x);
    // And accepted by the server itself.
    assert_eq!(c.get("/v1/users/me", Some(token)).status, 200);
}

/// An operator removes a signing key (say it leaked): tokens it signed must
/// stop verifying at the next reread of the keys directory, including the
/// ones the server already verified and cached.
#[test]
fn a_removed_operator_key_stops_verifying_its_tokens_even_cached_ones() {
    let keys = tempfile::tempdir().unwrap();
    let rng = ring::rand::SystemRandom::new();
    let pem = |der: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n")
    };
    let key_a = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let key_b = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let signing = keys.path().join("signing.pem");
    std::fs::write(&signing, pem(key_a.as_ref())).unwrap();
    let dir = keys.path().to_owned();
    let srv = TestServer::with(move |e, _| {
        e.signing_keys_dir = Some(dir);
        e.keys_dir_reread = std::time::Duration::from_millis(200);
    });
    let c = srv.client();
    let kids = || -> BTreeSet<String> {
        c.get("/.well-known/jwks.json", None).json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| s(&k["kid"]).to_owned())
            .collect()
    };
    let reg = srv.register("removed-key@example.com", "password-1");
    let token = s(&reg["access_token"]).to_owned();
    let header: Value =
        serde_json::from_slice(&B64.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let kid_a = s(&header["kid"]).to_owned();
    assert_eq!(kids(), BTreeSet::from([kid_a.clone()]));
    // Verified, and so cached.
    assert_eq!(c.get("/v1/users/me", Some(&token)).status, 200);
    assert_eq!(c.get("/v1/users/me", Some(&token)).status, 200);

    // Key B replaces A, and A is gone entirely (written aside, then renamed
    // over: a reread never sees half a file).
    let aside = keys.path().join("signing.pem.new");
    std::fs::write(&aside, pem(key_b.as_ref())).unwrap();
    std::fs::rename(&aside, &signing).unwrap();
    let mut published = kids();
    for _ in 0..400 {
        if !published.contains(&kid_a) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
        published = kids();
    }
    assert!(
        !published.contains(&kid_a) && published.len() == 1,
        "the reread did not drop key A: {published:?}"
    );

    c.get("/v1/users/me", Some(&token))
        .problem(401, "invalid_token");
    // Tokens signed by the new key work.
    let r = srv.login("removed-key@example.com", "password-1");
    assert_eq!(r.status, 200, "{}", r.text());
    let fresh = s(&r.json()["access_token"]).to_owned();
    assert_eq!(c.get("/v1/users/me", Some(&fresh)).status, 200);
}
