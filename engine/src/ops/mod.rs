//! The operations the engine performs, one module each, grouped by the
//! resource they act on. An operation module holds its request type, its
//! reply type, the partition it runs in, and its flow; the edge calls it
//! through [`Engine::call`](crate::Engine::call) or
//! [`Engine::submit`](crate::Engine::submit), and gets back exactly its
//! reply type.
//!
//! | operation | partition |
//! | --- | --- |
//! | `auth::Register` | email |
//! | `auth::Login` | email, then user (open the session, upgrade the hash) |
//! | `auth::LoginMfa`, `auth::Logout`, `auth::LogoutAll` | user |
//! | `auth::Refresh` | user (none with a shared token store: one atomic store operation) |
//! | `users::*`, `sessions::*`, `oauth::*` | user |
//! | `email::*` | user (the store arbitrates a new address) |
//! | `password::Forgot` | email, then user; `Reset`, `Change`: user |
//! | `mfa::*`, `passkeys::*` | user |
//! | `auth::PasskeyStart` | one of its own; `auth::PasskeyFinish`: the user its credential names; `auth::MfaPasskeyStart`: user |
//! | `keys::Jwks`, `health::Readiness` | none (answered at once) |
//! | `health::Ping` | a user partition of its own |

use crate::core::Engine;
use crate::responder::Responder;

pub mod auth;
pub mod email;
pub mod health;
pub mod keys;
pub mod mfa;
pub mod oauth;
pub mod passkeys;
pub mod password;
pub mod sessions;
pub mod social;
pub mod users;

/// An operation of the engine: a request whose answer is `Self::Reply`.
pub trait Operation: Send + Sized + 'static {
    /// What a success answers.
    type Reply: Send + 'static;

    /// Starts the operation; never blocks. Work that needs a partition goes
    /// to its shard, the rest is answered on the calling thread or on the
    /// engine's runtime. `reply` is answered exactly once.
    fn submit(self, engine: &Engine, reply: Responder<Self::Reply>);
}
