//! Pushes to paired phones, written once for both databases: the phone's
//! push subscription (kept with its pairing), the push outbox (every push,
//! stored with the session or confirmation it announces), and its
//! delivery by the sender task: claimed under a lease, so that two
//! instances never send one at once and a dead sender's claims end.

use super::sql::{End, Kind, Row, Tx};
use super::{run, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::notify::push::{Announced, OutgoingPush};

/// A phone's push subscription as stored: the browser's `PushSubscription`
/// (its endpoint is a capability URL: never logged).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub endpoint: String,
    /// The browser's P-256 key, base64url.
    pub p256dh: String,
    /// The browser's auth secret, base64url.
    pub auth: String,
}

impl std::fmt::Debug for StoredSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSubscription").finish_non_exhaustive()
    }
}

/// Where an outbox push stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Not for a push service: the sandbox's delivery, or a phone without
    /// a subscription (it sees its approvals while its app is open).
    Kept,
    /// Waiting for the sender task.
    Pending,
    /// The push service took it.
    Sent,
    /// Given up (refused, too many attempts, too old).
    Failed,
    /// The subscription was dead (404, 410): it was dropped.
    Gone,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Kept => "kept",
            PushState::Pending => "pending",
            PushState::Sent => "sent",
            PushState::Failed => "failed",
            PushState::Gone => "gone",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        [PushState::Kept, PushState::Pending, PushState::Sent, PushState::Failed, PushState::Gone]
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("push_outbox.state {s:?}")))
    }
}

/// A pending push a sender claimed, until its lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedPush {
    pub id: i64,
    pub phone_id: String,
    pub announced: Announced,
    /// Attempts made before this one.
    pub attempts: u32,
    /// When it was written (it is useless once what it announces ended).
    pub written_at: Millis,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAttempt<'a> {
    Sent,
    Retry {
        at: Millis,
        error: &'a str,
    },
    Failed {
        error: &'a str,
    },
    /// The push service no longer knows `endpoint`: the phone's
    /// subscription is dropped if it still is that one.
    Gone {
        endpoint: &'a str,
        error: &'a str,
    },
}

impl Store {
    /// The push outbox, newest first.
    pub async fn push_outbox(&self, limit: u32) -> StoreResult<Vec<shared::PushMessage>> {
        run!(self, Kind::Read, |tx| async {
            let rows = tx
                .query("SELECT phone_id, session_id, confirmation_id, sent_at FROM push_outbox ORDER BY id DESC LIMIT $1", &[limit.into()])
                .await?;
            let pushes = rows
                .iter()
                .map(|r| {
                    Ok(shared::PushMessage {
                        phone_id: r.get(0)?,
                        session_id: r.get(1)?,
                        confirmation_id: r.get(2)?,
                        sent_at: Millis(r.get(3)?).to_rfc3339(),
                    })
                })
                .collect::<StoreResult<_>>()?;
            Ok(End::Commit(pushes))
        })
    }

    /// Sets (or, with `None`, clears) the push subscription of the paired
    /// phone `phone_id`; false if it is not paired.
    pub async fn set_push_subscription(&self, phone_id: &str, subscription: Option<&StoredSubscription>, now: Millis) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async {
            let (endpoint, p256dh, auth) = match subscription {
                Some(s) => (Some(s.endpoint.as_str()), Some(s.p256dh.as_str()), Some(s.auth.as_str())),
                None => (None, None, None),
            };
            let since = subscription.map(|_| now.0);
            let changed = tx
                .execute(
                    "UPDATE paired_phones SET push_endpoint = $2, push_p256dh = $3, push_auth = $4, push_since = $5
                     WHERE id = $1 AND ended_at IS NULL",
                    &[phone_id.into(), endpoint.into(), p256dh.into(), auth.into(), since.into()],
                )
                .await?;
            Ok(End::Commit(changed == 1))
        })
    }

    /// The push subscription of the paired phone `phone_id`, if it is
    /// paired and has one.
    pub async fn push_subscription(&self, phone_id: &str) -> StoreResult<Option<StoredSubscription>> {
        run!(self, Kind::Read, |tx| async {
            let row = tx
                .query_opt(
                    "SELECT push_endpoint, push_p256dh, push_auth FROM paired_phones
                     WHERE id = $1 AND ended_at IS NULL AND push_endpoint IS NOT NULL",
                    &[phone_id.into()],
                )
                .await?;
            let found = row.map(|r| Ok::<_, StoreError>(StoredSubscription { endpoint: r.get(0)?, p256dh: r.get(1)?, auth: r.get(2)? }));
            Ok(End::Commit(found.transpose()?))
        })
    }

    /// Claims up to `limit` due pending pushes for `claim` until `until`:
    /// one statement, a compare-and-set on the lease (across instances
    /// too); a sender that dies loses its claims when the lease ends.
    pub async fn claim_pushes(&self, claim: &str, now: Millis, until: Millis, limit: u32) -> StoreResult<Vec<ClaimedPush>> {
        run!(self, Kind::Durable, |tx| async {
            let rows = tx
                .query(
                    "UPDATE push_outbox SET claim = $1, claimed_until = $3
                     WHERE id IN (SELECT id FROM push_outbox
                                  WHERE state = 'pending' AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until < $2)
                                  ORDER BY next_attempt_at LIMIT $4)
                       AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < $2)
                     RETURNING id, phone_id, session_id, confirmation_id, attempts, sent_at",
                    &[claim.into(), now.0.into(), until.0.into(), limit.into()],
                )
                .await?;
            Ok(End::Commit(rows.iter().map(claimed).collect::<StoreResult<_>>()?))
        })
    }

    /// Records an attempt at push `id` under `claim`; false if the claim
    /// was lost (its lease ended and another sender took it).
    pub async fn record_push_attempt(&self, id: i64, claim: &str, now: Millis, attempt: PushAttempt<'_>) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async {
            let (state, next, error) = match attempt {
                PushAttempt::Sent => (PushState::Sent, None, None),
                PushAttempt::Retry { at, error } => (PushState::Pending, Some(at.0), Some(error)),
                PushAttempt::Failed { error } => (PushState::Failed, None, Some(error)),
                PushAttempt::Gone { error, .. } => (PushState::Gone, None, Some(error)),
            };
            let delivered = (state == PushState::Sent).then_some(now.0);
            let changed = tx
                .execute(
                    "UPDATE push_outbox SET state = $3, claim = NULL, claimed_until = NULL, attempts = attempts + 1,
                     next_attempt_at = COALESCE($4, next_attempt_at), last_error = $5, delivered_at = $6
                     WHERE id = $1 AND claim = $2 AND state = 'pending'",
                    &[id.into(), claim.into(), state.as_str().into(), next.into(), error.into(), delivered.into()],
                )
                .await?;
            if changed != 1 {
                return Ok(End::Rollback(false));
            }
            if let PushAttempt::Gone { endpoint, .. } = attempt {
                // Only the subscription that failed: the phone may have
                // subscribed again meanwhile.
                tx.execute(
                    "UPDATE paired_phones SET push_endpoint = NULL, push_p256dh = NULL, push_auth = NULL, push_since = NULL
                     WHERE id = (SELECT phone_id FROM push_outbox WHERE id = $1) AND push_endpoint = $2",
                    &[id.into(), endpoint.into()],
                )
                .await?;
            }
            Ok(End::Commit(true))
        })
    }

    /// The delivery of the newest push to `phone_id` (tests, support): its
    /// state and attempts.
    pub async fn push_delivery(&self, phone_id: &str) -> StoreResult<Option<(PushState, u32)>> {
        run!(self, Kind::Read, |tx| async {
            let row = tx
                .query_opt("SELECT state, attempts FROM push_outbox WHERE phone_id = $1 ORDER BY id DESC LIMIT 1", &[phone_id.into()])
                .await?;
            let found = row.map(|r| Ok::<_, StoreError>((PushState::parse(&r.get::<String>(0)?)?, r.get(1)?)));
            Ok(End::Commit(found.transpose()?))
        })
    }
}

fn claimed(r: &Row) -> StoreResult<ClaimedPush> {
    let announced = match (r.get::<Option<String>>(2)?, r.get::<Option<String>>(3)?) {
        (Some(session), None) => Announced::Approval(session),
        (None, Some(confirmation)) => Announced::Confirmation(confirmation),
        _ => return Err(StoreError::Corrupt("a push announces one session or one confirmation".into())),
    };
    Ok(ClaimedPush { id: r.get(0)?, phone_id: r.get(1)?, announced, attempts: r.get(4)?, written_at: Millis(r.get(5)?) })
}

/// Stores `push`, announcing `announced`: `pending` for the sender task
/// if the phone has a subscription, else `kept`.
pub(super) async fn insert(tx: &impl Tx, push: &OutgoingPush, announced: &Announced) -> StoreResult<()> {
    let (session_id, confirmation_id) = match announced {
        Announced::Approval(id) => (Some(id.as_str()), None),
        Announced::Confirmation(id) => (None, Some(id.as_str())),
    };
    tx.execute(
        "INSERT INTO push_outbox (phone_id, session_id, confirmation_id, sent_at, state, next_attempt_at)
         SELECT id, CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS BIGINT),
                CASE WHEN push_endpoint IS NULL THEN 'kept' ELSE 'pending' END, CAST($4 AS BIGINT)
         FROM paired_phones WHERE id = $1",
        &[push.phone_id.as_str().into(), session_id.into(), confirmation_id.into(), push.sent_at.0.into()],
    )
    .await?;
    Ok(())
}
