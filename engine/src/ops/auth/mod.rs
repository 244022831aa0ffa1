//! Signing in and out: registration, password login and its second step,
//! passkey sign-in, refresh-token rotation, logout.

mod login;
mod login_mfa;
mod logout;
mod logout_all;
mod passkey;
mod refresh;
mod register;

pub use login::{Login, LoginReply};
pub use login_mfa::{LoginMfa, SecondFactorProof};
pub use logout::Logout;
pub use logout_all::LogoutAll;
pub use passkey::{MfaPasskeyStart, PasskeyFinish, PasskeyOptions, PasskeyStart};
pub use refresh::Refresh;
pub use register::{Register, Registered};
