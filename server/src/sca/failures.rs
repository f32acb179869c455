//! Failures per user, not per code (PSD2 RTS art. 4(3)(b)): a wrong
//! `sms-otp` code, a wrong step-up code and a wrong approval-link password
//! all count against the user, across every code and link, until one is
//! right. A new code or a new link does not restart the count (each code
//! still burns after its own five). Each fifth failure in a row blocks all
//! of them for 15 minutes, doubled at each block of the series (at most
//! 16 hours), and tells the user by SMS: guesses mean that someone holds
//! their phone's link, their password or a partner's session.
//!
//! Usage: [`UserFailures::reserve`] before the check (so that concurrent
//! guesses, on any instance, cannot pass five together), then
//! [`UserFailures::succeeded`] or [`UserFailures::failed`].

use std::sync::Arc;

use serde_json::json;

use crate::clock::{Clock, Millis};
use crate::error::Result;
use crate::model::{lock_after, AuditEvent, AuditKind, ClientInfo, UserAttempt};
use crate::notify::sms::{OutboxCopy, OutgoingSms, SmsSender};
use crate::phone::Phone;
use crate::store::Store;

/// Failures in a row before a block.
pub const MAX_IN_A_ROW: u32 = 5;
/// The first block of a series; each next one lasts twice as long.
pub const FIRST_BLOCK_MS: i64 = 15 * Millis::MINUTE;

/// No code or link password of the user is checked before `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub until: Millis,
}

impl Blocked {
    /// Whole seconds to wait, at least one.
    pub fn seconds_from(self, now: Millis) -> u64 {
        u64::try_from(self.until.0.saturating_sub(now.0)).map_or(1, |ms| ms.div_ceil(1_000).max(1))
    }
}

/// A reserved attempt: it counts as a failure unless it [`succeeded`].
///
/// [`succeeded`]: UserFailures::succeeded
#[derive(Debug)]
#[must_use = "an attempt ends as succeeded or failed"]
pub struct Attempt<'a> {
    user_id: &'a str,
    failures: u32,
}

impl Attempt<'_> {
    /// Attempts left before the next block, this one counted.
    pub fn left(&self) -> u32 {
        MAX_IN_A_ROW - self.failures % MAX_IN_A_ROW
    }
}

/// The per-user count of failed codes and link passwords.
#[derive(Clone)]
pub struct UserFailures {
    store: Store,
    clock: Arc<dyn Clock>,
    sms: Arc<dyn SmsSender>,
    /// Where the user reviews their account, for the block's SMS.
    security_page: Arc<str>,
    copy: OutboxCopy,
}

impl UserFailures {
    pub fn new(store: Store, clock: Arc<dyn Clock>, sms: Arc<dyn SmsSender>, security_page: Arc<str>, copy: OutboxCopy) -> Self {
        UserFailures { store, clock, sms, security_page, copy }
    }

    /// One attempt of `user_id`, or the block that refuses it.
    pub async fn reserve<'a>(&self, user_id: &'a str) -> Result<std::result::Result<Attempt<'a>, Blocked>> {
        Ok(match self.store.reserve_user_attempt(user_id, MAX_IN_A_ROW, FIRST_BLOCK_MS, self.clock.now()).await? {
            UserAttempt::Reserved { failures } => Ok(Attempt { user_id, failures }),
            UserAttempt::Blocked { until } => Err(Blocked { until }),
        })
    }

    /// Right: the user's count starts again.
    pub async fn succeeded(&self, attempt: Attempt<'_>) -> Result<()> {
        Ok(self.store.clear_user_failures(attempt.user_id).await?)
    }

    /// Wrong: the attempt stays counted. If it is the one that blocks, the
    /// user is told by SMS (stored with its audit event) and the block is
    /// returned.
    pub async fn failed(&self, attempt: Attempt<'_>, phone: &Phone, client: &ClientInfo) -> Result<Option<Blocked>> {
        let Some(block_ms) = lock_after(attempt.failures, MAX_IN_A_ROW, FIRST_BLOCK_MS) else {
            return Ok(None);
        };
        let now = self.clock.now();
        let sms = OutgoingSms::attempts_blocked(phone.clone(), attempt.failures, block_ms, &self.security_page, now, self.copy.clone());
        let detail = json!({"limit": "user_failures", "failures": attempt.failures, "blocked_ms": block_ms});
        let event = AuditEvent::account(AuditKind::LimitReached, Some(attempt.user_id), detail, client, now);
        self.store.append_notice(&sms, &event).await?;
        if let Err(e) = self.sms.deliver(&sms).await {
            tracing::warn!(error = %e, "sms delivery failed");
        }
        Ok(Some(Blocked { until: now.plus_millis(block_ms) }))
    }
}
