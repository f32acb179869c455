//! The HTTP surfaces, thin: extract, call the domain once, shape the answer.

pub mod account;
pub mod approvals;
pub mod assets;
pub mod client_addr;
pub mod company;
pub mod confirmations;
pub mod dev;
mod error;
pub mod extract;
pub mod health;
pub mod openapi;
pub mod partner;
pub mod phone;
pub mod sca_sessions;

pub use crate::state::AppState;
