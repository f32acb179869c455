#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed step fails the test

//! Integration tests of the HTTP API, in-process (one test binary).

mod account_passkeys;
mod bad_input;
mod binding;
mod company;
mod device_events;
mod evidence;
mod hardening;
mod helpers;
mod https;
mod idempotency;
mod instances;
mod limits;
mod link_password;
mod mock_flow;
mod openapi;
mod paired_device;
mod pairing;
mod passkey_flow;
mod phone_confirmations;
mod polling;
mod postgres_tls;
mod proxies;
mod replay;
mod security;
mod self_service;
mod sign_in;
mod slow_clients;
mod sms_otp;
mod static_files;
mod totp;
mod trusted_browsers;
mod web_push;
