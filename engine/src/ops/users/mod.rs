//! The signed-in user's profile.

mod me;
mod update_me;

pub use me::Me;
pub use update_me::{Patch, ProfilePatch, UpdateMe};
