//! Pushes to the paired phone. A push announces a `paired-device` session
//! or a confirmation the account area asks for, and carries nothing else:
//! no amount, payee or secret, only its opaque id; the phone reads the
//! details over its device credential. Stored in the push outbox with
//! what it announces.

use async_trait::async_trait;

use crate::clock::Millis;

/// A push to send to a paired phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingPush {
    /// The paired phone (`paired_phones.id`).
    pub phone_id: String,
    pub sent_at: Millis,
}

/// What a push announces: its whole payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Announced {
    /// A `paired-device` SCA session (its id).
    Approval(String),
    /// A confirmation for the account area (its id).
    Confirmation(String),
}

/// A push as stored: what it announces filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPush {
    pub phone_id: String,
    pub announced: Announced,
    pub sent_at: Millis,
}

impl StoredPush {
    /// What the phone receives: an opaque id, nothing more.
    pub fn payload(&self) -> String {
        match &self.announced {
            Announced::Approval(id) => serde_json::json!({ "approval": id }),
            Announced::Confirmation(id) => serde_json::json!({ "confirmation": id }),
        }
        .to_string()
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
    fn a_push_carries_an_id_only() {
        let push = StoredPush { phone_id: "p".into(), announced: Announced::Approval("01936f".into()), sent_at: Millis(0) };
        assert_eq!(push.payload(), r#"{"approval":"01936f"}"#);
        let push = StoredPush { announced: Announced::Confirmation("c1".into()), ..push };
        assert_eq!(push.payload(), r#"{"confirmation":"c1"}"#);
    }
}
