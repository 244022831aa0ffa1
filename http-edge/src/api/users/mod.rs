//! The signed-in user's profile: `/v1/users/me`.

pub mod me;
pub mod update_me;
