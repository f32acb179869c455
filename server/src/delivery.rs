//! What the two sender tasks (SMS: `sms_delivery`, Web Push:
//! `push_delivery`) share: the lease, the batch, the loop that sleeps
//! until woken or a second has passed, and [`Wake`], the domain's sender
//! in production.
//!
//! The domain stores each notice in its outbox in the transaction that
//! decided to send it, then hands it to its sender: in production that
//! only wakes the task (the row is committed already); the task also polls,
//! for rows written by other instances and for retries that fall due.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::clock::{Clock, Millis};
use crate::notify::push::{PushSender, StoredPush};
use crate::notify::sms::{OutgoingSms, SmsSender};
use crate::store::StoreResult;

/// How long a claim keeps other senders off a row: beyond the time its
/// batch takes at the outbound client's timeout (4 × 10 s, sent in turn).
pub const LEASE_MS: i64 = 60_000;
/// Rows claimed at once.
pub const BATCH: u32 = 4;
/// How often a task looks for due rows without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Wakes a sender task when a notice was stored.
#[derive(Debug, Default, Clone)]
pub struct Wake(Arc<Notify>);

#[async_trait]
impl SmsSender for Wake {
    async fn deliver(&self, _sms: &OutgoingSms) -> anyhow::Result<()> {
        self.0.notify_one();
        Ok(())
    }
}

#[async_trait]
impl PushSender for Wake {
    async fn deliver(&self, _push: &StoredPush) -> anyhow::Result<()> {
        self.0.notify_one();
        Ok(())
    }
}

/// One instance's sender for one outbox: how it claims its rows and
/// attempts one; the round is the same for every outbox.
#[async_trait]
pub trait Courier: Send + Sync + 'static {
    /// Its outbox, for the logs.
    const OUTBOX: &'static str;
    /// A row claimed from it.
    type Claimed: Send + 'static;

    fn clock(&self) -> &dyn Clock;
    /// Claims up to `limit` rows due at `now`, for a lease until `until`.
    async fn claim(&self, now: Millis, until: Millis, limit: u32) -> StoreResult<Vec<Self::Claimed>>;
    /// Sends one claimed row and records the outcome.
    async fn attempt(&self, row: Self::Claimed) -> StoreResult<()>;

    /// One round: claims what is due and sends it, in turn; how many were
    /// claimed.
    async fn send_due(&self) -> StoreResult<usize> {
        let now = self.clock().now();
        let claimed = self.claim(now, now.plus_millis(LEASE_MS), BATCH).await?;
        let count = claimed.len();
        for row in claimed {
            self.attempt(row).await?;
        }
        Ok(count)
    }
}

/// When a retry `delay` after `now` falls due.
pub fn retry_at(now: Millis, delay: Duration) -> Millis {
    now.plus_millis(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2))
}

/// Runs `courier` until the process ends, woken by `wake` or every second.
pub fn spawn<C: Courier>(courier: C, wake: &Wake) -> tokio::task::JoinHandle<()> {
    let wake = wake.0.clone();
    tokio::spawn(async move {
        loop {
            match courier.send_due().await {
                // A full batch: more may be due at once.
                Ok(claimed) if claimed == BATCH as usize => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, outbox = C::OUTBOX, "the outbox could not be read"),
            }
            let _ = tokio::time::timeout(POLL, wake.notified()).await;
        }
    })
}

/// A sender's name in its claims: random, so that two never share one.
pub fn claim_name() -> anyhow::Result<String> {
    Ok(crate::token::Secret::generate()?.expose().to_owned())
}
