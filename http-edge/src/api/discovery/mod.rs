//! Discovery: `/.well-known/*`.

pub mod jwks;
pub mod openid_configuration;
