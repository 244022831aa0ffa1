//! Signing in and out: registration, password login and its second step,
//! refresh-token rotation, logout.

mod login;
mod login_mfa;
mod logout;
mod logout_all;
mod refresh;
mod register;

pub use login::{Login, LoginReply};
pub use login_mfa::LoginMfa;
pub use logout::Logout;
pub use logout_all::LogoutAll;
pub use refresh::Refresh;
pub use register::{Register, Registered};
