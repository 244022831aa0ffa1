//! TOTP two-step verification: `/v1/mfa/totp/*`.

pub mod confirm;
pub mod disable;
pub mod enroll;
