//! Criterion micro-benchmarks: password hash verification (each algorithm),
//! JWT signing and verification, one shard round trip.
//!
//! `cargo bench -p portcullis-benches --bench micro`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_engine::clock::SystemClock;
use portcullis_engine::hashpool::{HashScheme, Hasher};
use portcullis_engine::ops::health::Ping;
use portcullis_engine::tokens::jwt::{AccessClaims, SigningKey, install_ring_provider, thumbprint};
use portcullis_engine::tokens::keys::{self, KeyChange, KeyRing, RotationPolicy};
use portcullis_engine::tokens::{TokenConfig, TokenService};
use portcullis_engine::{Engine, EngineConfig};
use portcullis_storage::{SessionId, UserId};
use ring::signature::{Ed25519KeyPair, KeyPair};

fn hash_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash_verify");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let password = b"correct horse battery staple";
    let mut h = Hasher::new();
    for (name, scheme) in [
        ("argon2id m=19456 t=2 p=1", HashScheme::default()),
        (
            "pbkdf2-sha256 i=600000",
            HashScheme::Pbkdf2Sha256 { i: 600_000 },
        ),
    ] {
        let stored = h.hash(&scheme, password).unwrap();
        g.bench_function(name, |b| {
            b.iter(|| assert!(h.verify(&stored, password).unwrap()))
        });
    }
    // An imported hash at a common cost.
    let stored = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy";
    g.bench_function("bcrypt cost=10 (verify only)", |b| {
        b.iter(|| h.verify(stored, password).unwrap())
    });
    g.finish();
}

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://localhost:8080".into(),
        aud: "portcullis".into(),
        sub: "01934f2a-7b3c-7d11-8022-334455667788".into(),
        sid: "M7PzZyOhjLsHAlf_RrXuJg".into(),
        jti: "ScU596xRbi-ltyoCCYFu1w".into(),
        iat: 1_900_000_000,
        exp: 1_900_000_900,
        amr: vec!["pwd".into()],
        auth_time: None,
    }
}

fn jwt(c: &mut Criterion) {
    assert!(install_ring_provider());
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let public = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
        .unwrap()
        .public_key()
        .as_ref()
        .to_vec();
    let kid = thumbprint(&public);
    let key = SigningKey::from_pkcs8(&kid, pkcs8.as_ref()).unwrap();
    let mut g = c.benchmark_group("jwt");
    g.bench_function("sign EdDSA (cached ring key pair)", |b| {
        b.iter(|| key.sign(&claims()).unwrap())
    });
    let enc = jsonwebtoken::EncodingKey::from_ed_der(pkcs8.as_ref());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    g.bench_function(
        "sign EdDSA (jsonwebtoken::encode, key parsed per call)",
        |b| b.iter(|| jsonwebtoken::encode(&header, &claims(), &enc).unwrap()),
    );

    let svc = TokenService::new(TokenConfig {
        issuer: "http://localhost:8080".into(),
        audience: "portcullis".into(),
        access_ttl: Duration::from_secs(900),
        verified_cache_capacity: 1_000_000,
    })
    .unwrap();
    let now = 1_900_000_000_000;
    let policy = RotationPolicy {
        interval: Duration::from_secs(86_400 * 30),
        publish_lead: Duration::from_secs(3600),
        retire_after: Duration::from_secs(1200),
    };
    let records: Vec<_> = keys::plan(&[], now, &policy, &rng)
        .unwrap()
        .into_iter()
        .filter_map(|c| match c {
            KeyChange::Save(k) => Some(k),
            KeyChange::Delete(_) => None,
        })
        .collect();
    svc.set_keys(KeyRing::load(records, now));
    let pwd = ["pwd".to_owned()];
    let token = svc
        .issue_access(UserId([1; 16]), SessionId([2; 16]), now, &pwd, now)
        .unwrap()
        .token;
    g.bench_function("verify EdDSA (signature + claims, uncached)", |b| {
        b.iter_batched(
            || {
                svc.issue_access(UserId([1; 16]), SessionId([2; 16]), now, &pwd, now)
                    .unwrap()
                    .token
            },
            |t| svc.verify_access(&t, now + 1000).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    svc.verify_access(&token, now + 1000).unwrap();
    g.bench_function("verify EdDSA (cached token)", |b| {
        b.iter(|| svc.verify_access(&token, now + 1000).unwrap())
    });
    g.finish();
}

fn shard_round_trip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.password_hash = HashScheme::Argon2id { m: 64, t: 1, p: 1 };
    let engine = rt
        .block_on(Engine::start(
            cfg,
            Arc::new(SystemClock),
            rt.handle().clone(),
        ))
        .unwrap();
    c.bench_function("shard round trip (submit, actor, task, reply)", |b| {
        b.iter(|| rt.block_on(engine.call(Ping)).unwrap())
    });
    rt.block_on(engine.shutdown(Duration::from_secs(1)));
}

/// The most work one refresh request can cause: a presented token the
/// longest allowed walk behind the session's current one.
fn refresh_chain_walk(c: &mut Criterion) {
    use portcullis_engine::tokens::refresh::{self, Chain, MAX_WALK};
    use portcullis_storage::{SessionId, UserId};
    let chain = Chain::new(&[7; 32]);
    let sid = SessionId([2; 16]);
    let first = refresh::first_secret(&ring::rand::SystemRandom::new()).unwrap();
    let mut secret = first.clone();
    for g in 0..MAX_WALK {
        secret = chain.next(sid, g, &secret);
    }
    let current = refresh::hash_secret(&secret);
    let token = refresh::parse(&refresh::encode(UserId([1; 16]), sid, 0, &first)).unwrap();
    c.bench_function(
        "refresh lineage, a token MAX_WALK (1,024) rotations behind",
        |b| b.iter(|| chain.lineage(&token, &current, MAX_WALK)),
    );
}

criterion_group!(
    benches,
    hash_verify,
    jwt,
    shard_round_trip,
    refresh_chain_walk
);
criterion_main!(benches);
