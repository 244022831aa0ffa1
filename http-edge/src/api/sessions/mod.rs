//! The user's sessions: `/v1/sessions`.

pub mod delete;
pub mod list;
