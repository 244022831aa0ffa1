//! HTTP integration tests: the real server, started in-process on port 0
//! (and, for crash and shutdown tests, the real binary), driven over sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod account;
mod auth;
mod bad_input;
mod binary;
mod cluster;
mod docs;
mod edge_hardening;
mod email;
mod framing;
mod hardening;
mod layers;
mod mfa;
mod operations;
mod passkeys;
mod password;
mod scylla;
mod social;
mod startup;
mod support;
