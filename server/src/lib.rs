//! Passgate: Strong Customer Authentication for a partner API, with a
//! WebAuthn relying party. `main.rs` is the CLI; everything else is here so
//! that tests and benchmarks build the same application.
//!
//! Layers, arrows pointing down only:
//! `app` (router) → `http` (handlers, extractors, error → status) →
//! `state` → `sca` (the domain: the guard, approvals, retention) and
//! `account` (the account area: sign-in, browser sessions) →
//! `relying_party` (a pure webauthn-rs wrapper) and `store` (the storage
//! interface and its backends, every SQL query) → `model` (the records
//! and the session state machine) → `ledger`, `notify` (SMS and pushes; its providers call out through `outbound`, the HTTPS client), `one_time_code` (codes sent by SMS), `phone`, `email`,
//! `password`, `sealed`, `token`, `binding` (the rule for binding a factor), `chain` (the audit chain's hash and MAC), `clock` (values). `error` (one error type) sits beside the layers that
//! return it: it knows `store`'s and `ledger`'s errors, nothing above.

pub mod account;
pub mod app;
pub mod audit;
pub mod binding;
pub mod chain;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod email;
pub mod error;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod one_time_code;
pub mod outbound;
pub mod password;
pub mod phone;
pub mod push_delivery;
pub mod relying_party;
pub mod sca;
pub mod sealed;
pub mod serve;
pub mod sms_delivery;
pub mod state;
pub mod store;
pub mod tls;
pub mod token;

pub use app::{app, AppState};
