//! The password: forgotten (a mailed link), reset with it, changed.

mod change;
mod forgot;
mod reset;

pub use change::ChangePassword;
pub use forgot::ForgotPassword;
pub use reset::ResetPassword;
