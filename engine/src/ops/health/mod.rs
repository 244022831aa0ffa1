//! The engine's own health: readiness of its dependencies, and a no-op
//! round trip through a shard.

mod ping;
mod readiness;

pub use ping::Ping;
pub use readiness::{Check, Readiness, ReadinessReport};
