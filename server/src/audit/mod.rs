//! Audit evidence of approvals: what is kept of a passkey approval, and its
//! offline re-verification (`passgate evidence <session>`).

pub mod evidence;
pub mod report;
pub mod verify;
