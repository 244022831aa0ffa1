use std::sync::Arc;
use std::time::Duration;

use portcullis_engine::clock::ManualClock;
use portcullis_engine::domain::{Email, Password};
use portcullis_engine::hashpool::HashScheme;
use portcullis_engine::ops::auth::{Login, LoginReply, Refresh, Register, Registered};
use portcullis_engine::{ClientInfo, Engine, EngineConfig, TokenGrant, UserView};
use portcullis_storage::embedded::EmbeddedStore;
use zeroize::Zeroizing;

pub const CHEAP: HashScheme = HashScheme::Argon2id { m: 64, t: 1, p: 1 };

pub struct TestEngine {
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub store: Arc<EmbeddedStore>,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> EngineConfig {
    let mut cfg = EngineConfig::new(dir);
    cfg.password_hash = CHEAP;
    cfg.shards = 4;
    cfg.hash_threads = 2;
    cfg
}

impl TestEngine {
    pub async fn start() -> TestEngine {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        Self::start_with(dir, cfg, ManualClock::new(1_800_000_000_000)).await
    }

    pub async fn start_with(
        dir: tempfile::TempDir,
        mut cfg: EngineConfig,
        clock: Arc<ManualClock>,
    ) -> TestEngine {
        // Everything the engine keeps on disk (data key, mail) goes in `dir`.
        cfg.data_dir = dir.path().to_owned();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        let engine = Engine::start_with_stores(
            cfg,
            clock.clone(),
            tokio::runtime::Handle::current(),
            store.clone(),
            store.clone(),
        )
        .await
        .unwrap();
        TestEngine {
            engine,
            clock,
            store,
            dir,
        }
    }

    pub async fn stop(self) -> (tempfile::TempDir, Arc<ManualClock>) {
        self.engine.shutdown(Duration::from_secs(5)).await;
        drop(self.engine);
        let TestEngine {
            store, dir, clock, ..
        } = self;
        drop(store);
        (dir, clock)
    }

    pub async fn register(&self, email: &str, password: &str) -> (Arc<UserView>, TokenGrant) {
        let Registered { user, grant } = self
            .engine
            .call(register_cmd(email, password))
            .await
            .unwrap();
        (user, grant)
    }
}

pub fn email(s: &str) -> Email {
    Email::parse("email", s).unwrap()
}

pub fn password(s: &str) -> Password {
    Password::parse("password", Zeroizing::new(s.to_owned())).unwrap()
}

pub fn register_cmd(e: &str, p: &str) -> Register {
    Register {
        email: email(e),
        password: password(p),
        name: None,
        client: ClientInfo::default(),
    }
}

pub fn login_cmd(e: &str, p: &str) -> Login {
    Login {
        email: email(e),
        password: password(p),
        device_token: None,
        client: ClientInfo::default(),
    }
}

pub fn refresh_cmd(token: &str) -> Refresh {
    Refresh {
        refresh_token: Zeroizing::new(token.to_owned()),
        client: ClientInfo::default(),
    }
}

/// The tokens of a sign-in's or a refresh's reply.
pub trait Granted {
    fn into_grant(self) -> TokenGrant;
}

impl Granted for TokenGrant {
    fn into_grant(self) -> TokenGrant {
        self
    }
}

impl Granted for LoginReply {
    fn into_grant(self) -> TokenGrant {
        match self {
            LoginReply::Granted(g) => g,
            other => panic!("expected tokens, got {other:?}"),
        }
    }
}

pub fn granted(o: impl Granted) -> TokenGrant {
    o.into_grant()
}
