//! The integration suite: every test drives the real HTTP app on a real
//! database. `both_backends!` runs a test on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod admin;
mod cli;
mod cluster;
mod console;
mod dpop;
mod fast_path;
mod federation;
mod hardening;
mod interop;
mod introspect;
mod ops;
mod secretless;
mod signing_keys;
mod token;
mod token_errors;
mod usage;
mod verifier;
