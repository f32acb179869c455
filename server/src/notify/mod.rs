//! Notices: what Passgate tells a user, and how it reaches them. A notice
//! is an SMS to the registered phone ([`sms`]) or a push to the paired
//! phone ([`push`]). Each is stored in its outbox in the transaction that
//! decided to send it, then handed to its sender; in sandbox nothing
//! leaves the machine and the outboxes are the delivery, readable at
//! `/dev/sms` and `/dev/push`. Real senders plug in behind the same two
//! traits without touching the domain; [`providers`] holds the SMS
//! providers a real sender hands each message to.

pub mod providers;
pub mod push;
pub mod sms;
pub mod webpush;

pub use push::{OutgoingPush, PushSender, SandboxPush};
pub use sms::{OutboxCopy, OutgoingSms, SandboxOutbox, SmsSender};

/// What opening an SCA session sends the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The approval link, or an `sms-otp` code.
    Sms(OutgoingSms),
    /// A push to the paired phone (`paired-device`).
    Push(OutgoingPush),
}

impl Notice {
    pub fn sms(&self) -> Option<&OutgoingSms> {
        match self {
            Notice::Sms(sms) => Some(sms),
            Notice::Push(_) => None,
        }
    }

    pub fn push(&self) -> Option<&OutgoingPush> {
        match self {
            Notice::Push(push) => Some(push),
            Notice::Sms(_) => None,
        }
    }
}
