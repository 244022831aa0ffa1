//! The public keys that verify access tokens.

mod jwks;

pub use jwks::Jwks;
