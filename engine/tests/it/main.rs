//! Engine integration tests: the flows through `Engine::call`, on the
//! embedded store in a temporary directory, with a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod email;
mod flows;
mod mail;
mod support;
