//! Signing in and out: `/v1/auth/*`.

pub mod login;
pub mod login_mfa;
pub mod logout;
pub mod logout_all;
pub mod passkey;
pub mod refresh;
pub mod register;
