//! Pushes to the paired phone. A push announces a `paired-device` session
//! and carries nothing else: no amount, payee or secret, only the
//! session's opaque id; the phone reads the details over its device
//! credential. Stored in the push outbox with the session it announces.

use async_trait::async_trait;

use crate::clock::Millis;

/// A push to send to a paired phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPush {
    /// The paired phone (`paired_phones.id`).
    pub phone_id: String,
    pub sent_at: Millis,
}

/// A push as stored: the session it announces filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPush {
    pub phone_id: String,
    /// The SCA session's id: the push's whole payload.
    pub session_id: String,
    pub sent_at: Millis,
}

impl StoredPush {
    /// What the phone receives: the approval's opaque id, nothing more.
    pub fn payload(&self) -> String {
        serde_json::json!({ "approval": self.session_id }).to_string()
    }
}

#[async_trait]
pub trait PushSender: Send + Sync + 'static {
    async fn deliver(&self, push: &StoredPush) -> anyhow::Result<()>;
}

/// Sandbox: the stored outbox row is the delivery (`GET /dev/push`).
#[derive(Debug, Default)]
pub struct SandboxPush;

#[async_trait]
impl PushSender for SandboxPush {
    async fn deliver(&self, _push: &StoredPush) -> anyhow::Result<()> {
        tracing::info!("push kept in the sandbox outbox (GET /dev/push)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_carries_the_approvals_id_only() {
        let push = StoredPush { phone_id: "p".into(), session_id: "01936f".into(), sent_at: Millis(0) };
        assert_eq!(push.payload(), r#"{"approval":"01936f"}"#);
    }
}
