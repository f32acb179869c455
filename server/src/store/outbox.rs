//! The SMS outbox: every SMS Passgate sends, stored (whole in sandbox, its
//! secrets redacted in production, sealed for a provider) in the
//! transaction that decided to send it, and its delivery by the sender
//! task; written once for both databases. Pushes: `push_outbox.rs`.

use super::sql::{End, Kind, Tx};
use super::{run, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::notify::sms::OutgoingSms;

impl Store {
    /// The SMS outbox, newest first, optionally for one phone number.
    pub async fn sms_outbox(&self, to: Option<&str>, limit: u32) -> StoreResult<Vec<shared::SmsMessage>> {
        run!(self, Kind::ReadOne, |tx| outbox(tx, to, limit))
    }
}

/// Stores `sms` in the outbox: `pending` for the sender task when it
/// carries its sealed copy, else `kept` (the sandbox's delivery, or a
/// production without a provider).
pub(super) async fn insert(tx: &impl Tx, sms: &OutgoingSms) -> StoreResult<()> {
    let stored = sms.stored().map_err(|e| StoreError::Backend(format!("sealing an SMS: {e}")))?;
    let (state, next_attempt_at) = match stored.sealed {
        Some(_) => (SmsState::Pending, Some(sms.sent_at.0)),
        None => (SmsState::Kept, None),
    };
    tx.execute(
        "INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at, state, sealed, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            sms.to.as_str().into(),
            stored.body.as_ref().into(),
            stored.link.into(),
            stored.otp.into(),
            sms.sent_at.0.into(),
            state.as_str().into(),
            stored.sealed.as_deref().into(),
            next_attempt_at.into(),
        ],
    )
    .await?;
    Ok(())
}

/// Where an outbox SMS stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsState {
    /// Not for a provider: the sandbox's delivery, or nothing to send with.
    Kept,
    /// Waiting for the sender task.
    Pending,
    /// The provider took it.
    Sent,
    /// Given up.
    Failed,
}

impl SmsState {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsState::Kept => "kept",
            SmsState::Pending => "pending",
            SmsState::Sent => "sent",
            SmsState::Failed => "failed",
        }
    }
}

/// A pending SMS a sender claimed: its sealed copy, until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedSms {
    pub id: i64,
    pub to_phone: String,
    pub sealed: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When it was written (it is useless some minutes later).
    pub written_at: Millis,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsAttempt<'a> {
    Sent { provider_id: Option<&'a str> },
    Retry { at: Millis, error: &'a str },
    Failed { error: &'a str },
}

impl Store {
    /// Claims up to `limit` due pending SMS for `claim` until `until`: no
    /// other sender takes them meanwhile (one statement, a compare-and-set
    /// on the lease, so across instances too); a sender that dies loses
    /// its claim when the lease ends.
    pub async fn claim_sms(&self, claim: &str, now: Millis, until: Millis, limit: u32) -> StoreResult<Vec<ClaimedSms>> {
        run!(self, Kind::Durable, |tx| async {
            let rows = tx
                .query(
                    "UPDATE sms_outbox SET claim = $1, claimed_until = $3
                     WHERE id IN (SELECT id FROM sms_outbox
                                  WHERE state = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)
                                  ORDER BY next_attempt_at LIMIT $4)
                       AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < $2)
                     RETURNING id, to_phone, sealed, attempts, sent_at",
                    &[claim.into(), now.0.into(), until.0.into(), limit.into()],
                )
                .await?;
            let claimed = rows
                .iter()
                .map(|r| {
                    Ok(ClaimedSms {
                        id: r.get(0)?,
                        to_phone: r.get(1)?,
                        sealed: r.get::<Option<String>>(2)?.unwrap_or_default(),
                        attempts: r.get(3)?,
                        written_at: Millis(r.get(4)?),
                    })
                })
                .collect::<StoreResult<_>>()?;
            Ok(End::Commit(claimed))
        })
    }

    /// Records an attempt at SMS `id` under `claim`; `false` if the claim
    /// was lost (its lease ended and another sender took it). A sent or
    /// failed SMS forgets its sealed copy.
    pub async fn record_sms_attempt(&self, id: i64, claim: &str, now: Millis, attempt: SmsAttempt<'_>) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async {
            let changed = match attempt {
                SmsAttempt::Sent { provider_id } => {
                    tx.execute(
                        "UPDATE sms_outbox SET state = 'sent', sealed = NULL, claim = NULL, claimed_until = NULL, attempts = attempts + 1,
                         delivered_at = $3, provider_id = $4 WHERE id = $1 AND claim = $2 AND state = 'pending'",
                        &[id.into(), claim.into(), now.0.into(), provider_id.into()],
                    )
                    .await?
                }
                SmsAttempt::Retry { at, error } => {
                    tx.execute(
                        "UPDATE sms_outbox SET claim = NULL, claimed_until = NULL, attempts = attempts + 1, next_attempt_at = $3,
                         last_error = $4 WHERE id = $1 AND claim = $2 AND state = 'pending'",
                        &[id.into(), claim.into(), at.0.into(), error.into()],
                    )
                    .await?
                }
                SmsAttempt::Failed { error } => {
                    tx.execute(
                        "UPDATE sms_outbox SET state = 'failed', sealed = NULL, claim = NULL, claimed_until = NULL,
                         attempts = attempts + 1, last_error = $3 WHERE id = $1 AND claim = $2 AND state = 'pending'",
                        &[id.into(), claim.into(), error.into()],
                    )
                    .await?
                }
            };
            Ok(End::Commit(changed == 1))
        })
    }

    /// The delivery of the newest SMS to `to` (tests, support): its state,
    /// attempts, the provider's id, and whether its sealed copy is kept.
    pub async fn sms_delivery(&self, to: &str) -> StoreResult<Option<(SmsState, u32, Option<String>, bool)>> {
        run!(self, Kind::Read, |tx| async {
            let row = tx
                .query_opt(
                    "SELECT state, attempts, provider_id, sealed FROM sms_outbox WHERE to_phone = $1 ORDER BY id DESC LIMIT 1",
                    &[to.into()],
                )
                .await?;
            let found = match row {
                None => None,
                Some(r) => {
                    let state = match r.get::<String>(0)?.as_str() {
                        "kept" => SmsState::Kept,
                        "pending" => SmsState::Pending,
                        "sent" => SmsState::Sent,
                        "failed" => SmsState::Failed,
                        other => return Err(StoreError::Corrupt(format!("sms_outbox.state {other:?}"))),
                    };
                    Some((state, r.get(1)?, r.get(2)?, r.get::<Option<String>>(3)?.is_some()))
                }
            };
            Ok(End::Commit(found))
        })
    }
}

async fn outbox(tx: &impl Tx, to: Option<&str>, limit: u32) -> StoreResult<End<Vec<shared::SmsMessage>>> {
    // Two statements, so that the filtered one uses its index.
    let rows = match to {
        Some(to) => {
            tx.query(
                "SELECT to_phone, body, link, otp, sent_at FROM sms_outbox WHERE to_phone = $1 ORDER BY id DESC LIMIT $2",
                &[to.into(), limit.into()],
            )
            .await?
        }
        None => tx.query("SELECT to_phone, body, link, otp, sent_at FROM sms_outbox ORDER BY id DESC LIMIT $1", &[limit.into()]).await?,
    };
    let messages = rows
        .iter()
        .map(|r| {
            Ok(shared::SmsMessage {
                to: r.get(0)?,
                body: r.get(1)?,
                link: r.get(2)?,
                otp: r.get(3)?,
                sent_at: Millis(r.get(4)?).to_rfc3339(),
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(messages))
}
