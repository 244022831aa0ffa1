//! Portcullis engine: shard actors serializing the operations of each user
//! and email partition, the password hash pool, the token service, and the
//! operations themselves.
//!
//! The edge talks to the engine only through [`ops`]: it builds an
//! [`Engine`] from an [`EngineConfig`] (which also names the stores, so the
//! request path never touches storage) and calls [`Engine::submit`] or
//! [`Engine::call`] with an operation, getting back that operation's own
//! reply type.
//!
//! Modules, from the bottom up (a module uses only those below it):
//! `clock`, `domain`, `datakey`, `error`, `metrics`, `model`, `responder`,
//! `shutdown` · `passwords`, `mfa`, `tokens`, `hashpool`, `shard`, `mail`,
//! `views`, `readmodel`, `admission`, `social`, `passkeys`, `config` · `core` · `signing`,
//! `steps` · `ops`, `jobs` · `engine`.

#![forbid(unsafe_code)]

mod admission;
pub mod clock;
pub mod config;
mod core;
pub mod datakey;
pub mod domain;
mod engine;
mod error;
pub mod hashpool;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod mfa;
mod model;
pub mod ops;
pub mod passkeys;
pub mod passwords;
mod readmodel;
mod responder;
mod shard;
pub mod shutdown;
mod signing;
pub mod social;
mod steps;
pub mod tokens;
mod views;

pub use config::{EngineConfig, TokenStoreConfig, UserStoreConfig};
pub use core::Engine;
pub use engine::StartError;
pub use error::{AuthError, TokenProblem};
pub use model::{
    Bearer, ClientInfo, Introspection, MfaRequired, SecretText, SessionView, TokenGrant, TokenHint,
    UserView,
};
pub use ops::Operation;
pub use responder::{Reply, Responder};
