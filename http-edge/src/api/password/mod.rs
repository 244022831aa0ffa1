//! The password: `/v1/password/*`.

pub mod change;
pub mod forgot;
pub mod reset;
