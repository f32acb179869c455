//! Sending SMS. Every SMS is first stored in the outbox, in the same
//! transaction as what it announces; an [`SmsSender`] then delivers it. In
//! sandbox nothing leaves the machine: the outbox is readable at `/dev/sms`.

use async_trait::async_trait;

use crate::clock::Millis;
use crate::phone::Phone;

#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    pub to: Phone,
    pub body: String,
    /// The approval link the body carries, if any (sandbox outbox helper).
    pub link: Option<String>,
    /// The one-time code the body carries, if any (sandbox outbox helper).
    pub otp: Option<String>,
    pub sent_at: Millis,
}

/// The body holds secrets (links, codes): `Debug` shows only the recipient.
impl std::fmt::Debug for OutgoingSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingSms").field("to", &self.to).finish_non_exhaustive()
    }
}

impl OutgoingSms {
    /// The SMS that sends the user to the approval page.
    pub fn approval_link(to: Phone, partner_name: &str, link: String, now: Millis) -> Self {
        let body = format!("{partner_name} asks you to approve an operation. Review it here: {link}");
        OutgoingSms { to, body, link: Some(link), otp: None, sent_at: now }
    }
}

#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn deliver(&self, sms: &OutgoingSms) -> anyhow::Result<()>;
}

/// Sandbox: the stored outbox row is the delivery. Logs the masked
/// recipient, never the body (it carries a secret).
#[derive(Debug, Default)]
pub struct SandboxOutbox;

#[async_trait]
impl SmsSender for SandboxOutbox {
    async fn deliver(&self, sms: &OutgoingSms) -> anyhow::Result<()> {
        tracing::info!(to = %sms.to.masked(), "sms kept in the sandbox outbox (GET /dev/sms)");
        Ok(())
    }
}
