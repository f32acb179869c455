//! Audit evidence of approvals: what is kept of a passkey approval, and its
//! offline re-verification (`passgate evidence <session>`); the audit
//! chain's verification (`passgate audit verify`).

pub mod chain;
pub mod evidence;
pub mod report;
pub mod verify;
