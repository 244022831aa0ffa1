//! The account's address: verify it, change it.

mod change_confirm;
mod change_request;
mod verify_confirm;
mod verify_request;

pub use change_confirm::ConfirmEmailChange;
pub use change_request::RequestEmailChange;
pub use verify_confirm::ConfirmEmailVerification;
pub use verify_request::RequestEmailVerification;
