//! Production's SMS delivery: the sender task between the outbox and the
//! provider.
//!
//! Every SMS is written to the outbox in the transaction that decided to
//! send it, with the message as sent sealed under the secrets key (the
//! readable copy is redacted). The task claims due rows for a lease, opens
//! each, hands it to the provider, and records the outcome: sent (the
//! sealed copy is forgotten), retried later with backoff and the
//! provider's `Retry-After`, or failed for good (refused, too many
//! attempts, or too old to be of use). So an SMS is not lost when a
//! process dies (its rows wait in the database, and a dead sender's
//! claims end with their lease), and two instances never send one at
//! once. Delivery is at least once: a sender that dies between the
//! provider's answer and the record sends it again after the lease, with
//! the same id (`Idempotency-Key` for a webhook; Twilio has no such key).
//!
//! The loop, the lease and the wake-up are shared with pushes: `delivery`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, Millis};
use crate::delivery::{retry_at, Courier};
use crate::notify::providers::{retry_delay, SendFailure, SmsProvider, SmsToSend};
use crate::notify::sms::SmsSeal;
use crate::phone::Phone;
use crate::sealed::SecretsKey;
use crate::store::{ClaimedSms, SmsAttempt, Store, StoreResult};

/// Attempts before giving up.
pub const MAX_ATTEMPTS: u32 = 8;
/// An SMS older than this is given up: its link or code has expired.
pub const MAX_AGE_MS: i64 = 15 * Millis::MINUTE;

/// The sender task of one instance.
pub struct Sender {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub provider: Arc<dyn SmsProvider>,
    pub key: SecretsKey,
    /// This sender's name in its claims.
    claim: String,
}

impl Sender {
    pub fn new(store: Store, clock: Arc<dyn Clock>, provider: Arc<dyn SmsProvider>, key: SecretsKey) -> anyhow::Result<Self> {
        Ok(Sender { store, clock, provider, key, claim: crate::delivery::claim_name()? })
    }

    /// The message as it is to be sent.
    fn open(&self, sms: &ClaimedSms) -> Result<SmsToSend, String> {
        let to = Phone::parse(&sms.to_phone).map_err(|_| "the stored number does not parse".to_owned())?;
        let body = self.key.open(&sms.sealed, &SmsSeal::owner(&to)).map_err(|e| e.to_string())?;
        let body = String::from_utf8(body).map_err(|_| "the sealed message is not UTF-8".to_owned())?;
        Ok(SmsToSend { id: format!("sms-{}", sms.id), to, body })
    }
}

#[async_trait]
impl Courier for Sender {
    const OUTBOX: &'static str = "sms";
    type Claimed = ClaimedSms;

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    async fn claim(&self, now: Millis, until: Millis, limit: u32) -> StoreResult<Vec<ClaimedSms>> {
        self.store.claim_sms(&self.claim, now, until, limit).await
    }

    async fn attempt(&self, sms: ClaimedSms) -> StoreResult<()> {
        let started = std::time::Instant::now();
        let outcome = match self.open(&sms) {
            Err(error) => Outcome::Failed(error),
            Ok(_) if self.clock.now().0 - sms.written_at.0 > MAX_AGE_MS => Outcome::Failed("expired before delivery".into()),
            Ok(message) => match self.provider.send(&message).await {
                Ok(sent) => Outcome::Sent(sent.provider_id),
                Err(SendFailure::Permanent { reason }) => Outcome::Failed(reason),
                Err(SendFailure::Retry { reason, .. }) if sms.attempts + 1 >= MAX_ATTEMPTS => {
                    Outcome::Failed(format!("{MAX_ATTEMPTS} attempts: {reason}"))
                }
                Err(SendFailure::Retry { after, reason }) => Outcome::Retry(retry_delay(sms.attempts, after), reason),
            },
        };
        let now = self.clock.now();
        let (attempt, label) = match &outcome {
            Outcome::Sent(id) => (SmsAttempt::Sent { provider_id: id.as_deref() }, "sent"),
            Outcome::Retry(delay, error) => (SmsAttempt::Retry { at: retry_at(now, *delay), error }, "retry"),
            Outcome::Failed(error) => (SmsAttempt::Failed { error }, "failed"),
        };
        match &outcome {
            Outcome::Sent(_) => {}
            Outcome::Retry(_, error) => tracing::info!(id = sms.id, %error, "sms not delivered yet; will retry"),
            Outcome::Failed(error) => tracing::warn!(id = sms.id, %error, "sms given up"),
        }
        metrics::counter!("passgate_sms_deliveries_total", "outcome" => label).increment(1);
        metrics::histogram!("passgate_sms_delivery_seconds").record(started.elapsed().as_secs_f64());
        if !self.store.record_sms_attempt(sms.id, &self.claim, now, attempt).await? {
            tracing::warn!(id = sms.id, "sms claim lost before its outcome was recorded");
        }
        Ok(())
    }
}

enum Outcome {
    Sent(Option<String>),
    Retry(Duration, String),
    Failed(String),
}
