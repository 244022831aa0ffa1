//! The signed-in user's sessions.

mod delete;
mod list;

pub use delete::DeleteSession;
pub use list::ListSessions;
