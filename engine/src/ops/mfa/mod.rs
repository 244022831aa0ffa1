//! TOTP two-step verification: enroll, confirm (recovery codes), disable.
//! The second step of a login is [`crate::ops::auth::LoginMfa`]; the shared
//! steps are in `steps::totp`.

mod confirm;
mod disable;
mod enroll;

pub use confirm::ConfirmTotp;
pub use disable::DisableTotp;
pub use enroll::{EnrollTotp, TotpEnrollment};
