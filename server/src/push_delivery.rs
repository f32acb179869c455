//! Web Push's delivery: the sender task between the push outbox and the
//! phones' push services.
//!
//! A push is written to the outbox in the transaction that opens what it
//! announces, `pending` when the phone has a subscription. The task claims
//! due rows for a lease (`delivery`), reads the phone's subscription as it
//! is now, and sends the push: encrypted for the phone, VAPID-signed, with
//! only the opaque id of what it announces. It records the outcome: sent;
//! retried later (5xx, 429, no answer) with backoff and the push service's
//! `Retry-After`; gone (404, 410: the subscription is dropped, and the
//! account area shows the phone's notifications off); or failed for good
//! (refused, too many attempts, or older than what it announces lives).
//! Delivery is at least once: a sender that dies between the push
//! service's answer and the record sends again after the lease; the phone
//! shows one notification per id, so a resend replaces the first.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::{Clock, Millis};
use crate::delivery::{retry_at, Courier};
use crate::model::SESSION_LIFETIME_MS;
use crate::notify::providers::retry_delay;
use crate::notify::push::StoredPush;
use crate::notify::webpush::{PushFailure, PushSubscription, WebPush};
use crate::store::{ClaimedPush, PushAttempt, Store, StoreResult};

/// Attempts before giving up.
pub const MAX_ATTEMPTS: u32 = 8;
/// A push older than this is given up: what it announces has expired
/// (an SCA session lives 15 minutes, a confirmation less).
pub const MAX_AGE_MS: i64 = SESSION_LIFETIME_MS;
/// How long a push service keeps a push for a phone that is offline.
pub const PUSH_TTL: Duration = Duration::from_secs(15 * 60);

/// The push sender task of one instance.
pub struct Sender {
    store: Store,
    clock: Arc<dyn Clock>,
    web_push: Arc<WebPush>,
    /// This sender's name in its claims.
    claim: String,
}

impl Sender {
    pub fn new(store: Store, clock: Arc<dyn Clock>, web_push: Arc<WebPush>) -> anyhow::Result<Self> {
        Ok(Sender { store, clock, web_push, claim: crate::delivery::claim_name()? })
    }

    async fn send(&self, push: &ClaimedPush, subscription: &PushSubscription) -> Outcome {
        let stored = StoredPush { phone_id: push.phone_id.clone(), announced: push.announced.clone(), sent_at: push.written_at };
        match self.web_push.send(subscription, stored.payload().as_bytes()).await {
            Ok(()) => Outcome::Sent,
            Err(PushFailure::Gone { status }) => {
                Outcome::Gone(subscription.endpoint().to_string(), format!("the push service answered {status}: subscription gone"))
            }
            Err(PushFailure::Permanent { reason }) => Outcome::Failed(reason),
            Err(PushFailure::Retry { reason, .. }) if push.attempts + 1 >= MAX_ATTEMPTS => {
                Outcome::Failed(format!("{MAX_ATTEMPTS} attempts: {reason}"))
            }
            Err(PushFailure::Retry { after, reason }) => Outcome::Retry(retry_delay(push.attempts, after), reason),
        }
    }
}

#[async_trait]
impl Courier for Sender {
    const OUTBOX: &'static str = "push";
    type Claimed = ClaimedPush;

    fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    async fn claim(&self, now: Millis, until: Millis, limit: u32) -> StoreResult<Vec<ClaimedPush>> {
        self.store.claim_pushes(&self.claim, now, until, limit).await
    }

    async fn attempt(&self, push: ClaimedPush) -> StoreResult<()> {
        let started = std::time::Instant::now();
        let subscription = self.store.push_subscription(&push.phone_id).await?;
        let outcome = match subscription {
            None => Outcome::Failed("the phone has no push subscription any more".into()),
            Some(_) if self.clock.now().0 - push.written_at.0 > MAX_AGE_MS => Outcome::Failed("expired before delivery".into()),
            Some(stored) => match PushSubscription::parse(&stored.endpoint, &stored.p256dh, &stored.auth) {
                Err(e) => Outcome::Failed(format!("the stored subscription does not parse: {e}")),
                Ok(subscription) => self.send(&push, &subscription).await,
            },
        };
        let now = self.clock.now();
        let (attempt, label) = match &outcome {
            Outcome::Sent => (PushAttempt::Sent, "sent"),
            Outcome::Retry(delay, error) => (PushAttempt::Retry { at: retry_at(now, *delay), error }, "retry"),
            Outcome::Failed(error) => (PushAttempt::Failed { error }, "failed"),
            Outcome::Gone(endpoint, error) => (PushAttempt::Gone { endpoint, error }, "gone"),
        };
        match &outcome {
            Outcome::Sent => {}
            Outcome::Retry(_, error) => tracing::info!(id = push.id, %error, "push not delivered yet; will retry"),
            Outcome::Failed(error) => tracing::warn!(id = push.id, %error, "push given up"),
            Outcome::Gone(_, error) => tracing::info!(id = push.id, %error, "push subscription dropped"),
        }
        metrics::counter!("passgate_push_deliveries_total", "outcome" => label).increment(1);
        metrics::histogram!("passgate_push_delivery_seconds").record(started.elapsed().as_secs_f64());
        if !self.store.record_push_attempt(push.id, &self.claim, now, attempt).await? {
            tracing::warn!(id = push.id, "push claim lost before its outcome was recorded");
        }
        Ok(())
    }
}

enum Outcome {
    Sent,
    Retry(Duration, String),
    Failed(String),
    /// The endpoint the push service no longer knows, and why.
    Gone(String, String),
}
