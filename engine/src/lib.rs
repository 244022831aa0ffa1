//! Portcullis engine: shard actors owning user and email partitions, the
//! password hash pool, the token service and the auth flows.
//!
//! The edge talks to the engine only through [`Command`] and [`Reply`]: it
//! builds an [`Engine`] from an [`EngineConfig`] (which also names the stores,
//! so the edge never touches storage) and calls [`Engine::submit`].

#![forbid(unsafe_code)]

mod bringup;
pub mod clock;
mod command;
pub mod config;
mod core;
pub mod datakey;
pub mod domain;
mod engine;
mod error;
mod flows;
pub mod hashpool;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod passwords;
mod readmodel;
mod shard;
pub mod tokens;
mod views;

pub use command::{
    Bearer, Check, ClientInfo, Command, Introspection, Outcome, Patch, ProfilePatch, Reply,
    Responder, SecretText, SessionView, TokenGrant, TokenHint, UserView,
};
pub use config::{EngineConfig, TokenStoreConfig, UserStoreConfig};
pub use engine::{Engine, StartError};
pub use error::{AuthError, TokenProblem};
