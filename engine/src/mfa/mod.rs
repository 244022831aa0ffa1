//! Multi-factor authentication: TOTP codes (authenticator apps).

pub mod totp;
