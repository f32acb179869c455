//! Passgate: Strong Customer Authentication for a partner API, with a
//! WebAuthn relying party. `main.rs` is the CLI; everything else is here so
//! that tests and benchmarks build the same application.
//!
//! Layers, arrows pointing down only:
//! `http` (handlers, extractors, error → status) → `sca` (the domain:
//! sessions, methods, the guard, approvals) and `relying_party` (WebAuthn)
//! → `store` (every SQL query). `ledger`, `phone`, `token`, `clock` are value
//! types and helpers used throughout.

pub mod app;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod http;
pub mod ledger;
pub mod phone;
pub mod relying_party;
pub mod sca;
pub mod sms;
pub mod store;
pub mod token;

pub use app::{app, AppState};
