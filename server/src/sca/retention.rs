//! Retention: what is past its time is deleted by a background task, in
//! small batches (each its own short transaction), safe to run in every
//! process at once. Sessions that ran out unused, their ceremonies, the
//! SMS outbox, rate-limit rows and ended browser sessions go after the operational retention; the
//! audit log and the approval evidence after their own, longer one, by
//! whole verified prefixes of their chains, each leaving an anchor. A
//! consumed session stays: it is the record of the action it allowed.

use std::time::Duration;

use super::{Sca, IDEMPOTENCY_WINDOW_MS};
use crate::chain::Chain;
use crate::clock::Millis;
use crate::error::Result;
use crate::store::{PurgeBefore, Purged, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Expired sessions, SMS, rate-limit rows.
    pub operational_ms: i64,
    /// The audit log and the approval evidence.
    pub evidence_ms: i64,
    /// Time between two purges.
    pub every: Duration,
}

/// Rows per table and transaction: short transactions, never a long lock.
const BATCH: u32 = 500;
/// A sign-in ceremony answers within minutes; one unanswered after an hour never will.
const UNANSWERED_CEREMONY_MS: i64 = 60 * Millis::MINUTE;

impl Sca {
    /// Deletes everything past its retention now; returns what went.
    pub async fn purge(&self, retention: &Retention) -> Result<Purged> {
        let now = self.clock.now();
        let before = PurgeBefore {
            operational: Millis(now.0.saturating_sub(retention.operational_ms)),
            evidence: Millis(now.0.saturating_sub(retention.evidence_ms)),
            idempotency: Millis(now.0.saturating_sub(IDEMPOTENCY_WINDOW_MS)),
            ceremonies: Millis(now.0.saturating_sub(UNANSWERED_CEREMONY_MS)),
            batch: BATCH,
        };
        let mut total = Purged::default();
        loop {
            let mut purged = self.store.purge(before).await?;
            purged.audit_events = self.purge_chain(Chain::AuditEvents, before.evidence, now).await?;
            purged.evidence = self.purge_chain(Chain::ApprovalEvidence, before.evidence, now).await?;
            total.sessions += purged.sessions;
            total.browser_sessions += purged.browser_sessions;
            total.sms += purged.sms;
            total.idempotency_keys += purged.idempotency_keys;
            total.audit_events += purged.audit_events;
            total.evidence += purged.evidence;
            if purged.total() == 0 {
                return Ok(total);
            }
            // Let the requests waiting for the database go first.
            tokio::task::yield_now().await;
        }
    }

    /// One batch of a chain's oldest rows. The application's role on
    /// PostgreSQL may not delete from the append-only tables: their owner
    /// purges them (`passgate purge`), and this process skips them.
    async fn purge_chain(&self, chain: Chain, cutoff: Millis, now: Millis) -> Result<u64> {
        match self.store.purge_chain(chain, cutoff, BATCH, now).await {
            Ok(removed) => Ok(removed),
            Err(StoreError::NotPermitted(why)) => {
                tracing::debug!(chain = chain.table(), %why, "the chains are purged by their owner");
                Ok(0)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Purges every `retention.every`, until the process ends.
    pub fn spawn_purger(&self, retention: Retention) {
        let sca = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(retention.every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                match sca.purge(&retention).await {
                    Ok(purged) if purged.total() > 0 => tracing::info!(?purged, "retention purge"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "retention purge failed"),
                }
            }
        });
    }
}
