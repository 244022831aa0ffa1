//! The account's address: `/v1/email/*`.

pub mod change_confirm;
pub mod change_request;
pub mod verify_confirm;
pub mod verify_request;
