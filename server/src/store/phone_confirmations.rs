//! What the paired phone confirms for the account area, each operation
//! written once for both databases: asking (one waiting per user, a new
//! request at most every 30 s, with its push), the phone's list and
//! look-up (its own only), the assertion's ceremony (taken once), the
//! phone's decision (its counter moved forward in the same transaction),
//! and the asking session's single use of an allowed one.

use super::passkeys::PasskeyOf;
use super::sql::{End, Kind, Row, Tx};
use super::{audit, outbox, push_outbox, run, PasskeyUse, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, ConfirmationPurpose, ConfirmationState, PhoneConfirmation};
use crate::notify::push::Announced;
use crate::notify::{OutgoingPush, OutgoingSms};
use crate::token::SecretHash;

/// A confirmation to ask for.
#[derive(Debug)]
pub struct NewConfirmation<'a> {
    pub user_id: &'a str,
    pub phone_id: &'a str,
    pub purpose: ConfirmationPurpose,
    /// The asking browser session's hash.
    pub session: &'a SecretHash,
    pub from_ip: Option<&'a str>,
    pub from_browser: &'a str,
    pub now: Millis,
    pub expires_at: Millis,
    /// No new request within this long of the user's last one.
    pub resend_after_ms: i64,
}

/// The answer of asking; nothing is stored but on `Asked`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asking {
    /// Asked: the confirmation's id.
    Asked(String),
    /// The user asked less than the resend wait ago: the wait left (ms).
    TooSoon(i64),
    /// The asking browser session ended meanwhile.
    SessionGone,
}

/// What the phone's decision came to; nothing is stored but on `Yes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmed {
    Yes,
    /// No longer waiting (decided, superseded, run out) or not this phone's.
    Closed,
    /// The phone's counter did not move forward, or it was unpaired.
    CounterNotAdvanced,
}

const COLUMNS: &str = "id, user_id, phone_id, purpose, from_ip, from_browser, state, created_at, expires_at";
const WAITING: ConfirmationState = ConfirmationState::Waiting;

impl Store {
    /// Asks the phone for a confirmation: the user's waiting ones are
    /// canceled (one at a time on the phone) and the push written, unless
    /// the user asked less than `resend_after_ms` ago: then `Err` is the
    /// wait in milliseconds and nothing is stored.
    pub async fn ask_phone_confirmation(&self, new: NewConfirmation<'_>, push: &OutgoingPush) -> StoreResult<Asking> {
        run!(self, Kind::Durable, |tx| ask(tx, &new, push))
    }

    /// The phone's confirmations still waiting at `now`, newest first.
    pub async fn phone_confirmations(&self, phone_id: &str, now: Millis) -> StoreResult<Vec<PhoneConfirmation>> {
        run!(self, Kind::Read, |tx| async {
            let sql = format!(
                "SELECT {COLUMNS} FROM phone_confirmations WHERE phone_id = $1 AND state = $2 AND expires_at > $3 ORDER BY created_at DESC"
            );
            let rows = tx.query(&sql, &[phone_id.into(), WAITING.as_str().into(), now.0.into()]).await?;
            Ok(End::Commit(rows.iter().map(confirmation).collect::<StoreResult<_>>()?))
        })
    }

    /// The phone's confirmation `id`, whatever its state.
    pub async fn phone_confirmation(&self, id: &str, phone_id: &str) -> StoreResult<Option<PhoneConfirmation>> {
        run!(self, Kind::Read, |tx| async {
            let sql = format!("SELECT {COLUMNS} FROM phone_confirmations WHERE id = $1 AND phone_id = $2");
            let row = tx.query_opt(&sql, &[id.into(), phone_id.into()]).await?;
            Ok(End::Commit(row.as_ref().map(confirmation).transpose()?))
        })
    }

    /// The newest confirmation of `purpose` the browser session asked for.
    pub async fn confirmation_of_session(
        &self,
        session: &SecretHash,
        purpose: ConfirmationPurpose,
    ) -> StoreResult<Option<PhoneConfirmation>> {
        run!(self, Kind::Read, |tx| async {
            let sql = format!(
                "SELECT {COLUMNS} FROM phone_confirmations WHERE session_hash = $1 AND purpose = $2 ORDER BY created_at DESC LIMIT 1"
            );
            let row = tx.query_opt(&sql, &[session.0[..].into(), purpose.as_str().into()]).await?;
            Ok(End::Commit(row.as_ref().map(confirmation).transpose()?))
        })
    }

    /// Keeps the assertion's ceremony of a waiting confirmation of the
    /// phone's (replacing one started before); false if none waits.
    pub async fn save_confirmation_ceremony(&self, id: &str, phone_id: &str, state: &str, now: Millis) -> StoreResult<bool> {
        // A ceremony lost to a power cut is started again: relaxed.
        run!(self, Kind::Relaxed, |tx| async {
            let saved = tx
                .execute(
                    "UPDATE phone_confirmations SET ceremony = $3
                     WHERE id = $1 AND phone_id = $2 AND state = $4 AND expires_at > $5",
                    &[id.into(), phone_id.into(), state.into(), WAITING.as_str().into(), now.0.into()],
                )
                .await?;
            Ok(End::Commit(saved == 1))
        })
    }

    /// Takes the ceremony of a waiting confirmation of the phone's: each
    /// challenge answers once.
    pub async fn take_confirmation_ceremony(&self, id: &str, phone_id: &str, now: Millis) -> StoreResult<Option<String>> {
        // Durable: a taken ceremony must not come back after a power cut.
        run!(self, Kind::Durable, |tx| async {
            let row = tx
                .query_opt(
                    "SELECT ceremony FROM phone_confirmations
                     WHERE id = $1 AND phone_id = $2 AND state = $3 AND expires_at > $4 AND ceremony IS NOT NULL",
                    &[id.into(), phone_id.into(), WAITING.as_str().into(), now.0.into()],
                )
                .await?;
            let Some(row) = row else { return Ok(End::Commit(None)) };
            let state: String = row.get(0)?;
            // Compare-and-set on the state read: of two takers, one wins.
            let taken = tx
                .execute(
                    "UPDATE phone_confirmations SET ceremony = NULL WHERE id = $1 AND ceremony = $2",
                    &[id.into(), state.as_str().into()],
                )
                .await?;
            Ok(End::Commit((taken == 1).then_some(state)))
        })
    }

    /// The phone allows a waiting confirmation: its passkey's counter
    /// moves forward (while it is paired) and the confirmation is
    /// allowed, with the audit event, together.
    pub async fn allow_on_phone(&self, id: &str, used: PasskeyUse<'_>, audit: &AuditEvent) -> StoreResult<Confirmed> {
        let json = serde_json::to_string(&used.passkey.passkey)?;
        run!(self, Kind::Durable, |tx| async {
            let params = [json.as_str().into(), used.new_sign_count.into(), used.now.0.into(), used.passkey.id.as_str().into()];
            if tx.execute(PasskeyOf::Phone.record_use(), &params).await? == 0 {
                return Ok(End::Rollback(Confirmed::CounterNotAdvanced));
            }
            if !decide(tx, id, &used.passkey.id, ConfirmationState::Allowed, used.now).await? {
                return Ok(End::Rollback(Confirmed::Closed));
            }
            audit::append(tx, audit, None).await?;
            Ok(End::Commit(Confirmed::Yes))
        })
    }

    /// The phone refuses a waiting confirmation, with the audit event and
    /// the SMS telling the user; false if none waits.
    pub async fn deny_on_phone(&self, id: &str, phone_id: &str, now: Millis, audit: &AuditEvent, sms: &OutgoingSms) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async {
            let denied = decide(tx, id, phone_id, ConfirmationState::Denied, now).await?;
            if denied {
                outbox::insert(tx, sms).await?;
                audit::append(tx, audit, None).await?;
            }
            Ok(End::Commit(denied))
        })
    }

    /// Uses the allowed confirmation of `purpose` the browser session
    /// asked for, once; false if none is allowed and unused at `now`.
    pub async fn use_confirmation(&self, session: &SecretHash, purpose: ConfirmationPurpose, now: Millis) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async { Ok(End::Commit(use_allowed(tx, session, None, purpose, now).await?)) })
    }
}

async fn ask(tx: &impl Tx, new: &NewConfirmation<'_>, push: &OutgoingPush) -> StoreResult<End<Asking>> {
    let last = tx
        .query_opt("SELECT MAX(created_at) FROM phone_confirmations WHERE user_id = $1", &[new.user_id.into()])
        .await?
        .map(|r| r.get::<Option<i64>>(0))
        .transpose()?
        .flatten();
    if let Some(wait) = last.map(|at| at + new.resend_after_ms - new.now.0).filter(|wait| *wait > 0) {
        return Ok(End::Rollback(Asking::TooSoon(wait)));
    }
    tx.execute(
        "UPDATE phone_confirmations SET state = $3, decided_at = $2 WHERE user_id = $1 AND state = $4",
        &[new.user_id.into(), new.now.0.into(), ConfirmationState::Canceled.as_str().into(), WAITING.as_str().into()],
    )
    .await?;
    let id = uuid::Uuid::now_v7().to_string();
    // Only for a live session (its end cascades to its confirmations).
    let inserted = tx
        .execute(
            "INSERT INTO phone_confirmations (id, user_id, phone_id, purpose, session_hash, from_ip, from_browser, state, created_at, expires_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE EXISTS (SELECT 1 FROM browser_sessions WHERE token_hash = $5)",
            &[
                id.as_str().into(),
                new.user_id.into(),
                new.phone_id.into(),
                new.purpose.as_str().into(),
                new.session.0[..].into(),
                new.from_ip.into(),
                new.from_browser.into(),
                WAITING.as_str().into(),
                new.now.0.into(),
                new.expires_at.0.into(),
            ],
        )
        .await?;
    if inserted == 0 {
        return Ok(End::Rollback(Asking::SessionGone));
    }
    push_outbox::insert(tx, push, &Announced::Confirmation(id.clone())).await?;
    Ok(End::Commit(Asking::Asked(id)))
}

/// Moves a waiting, unexpired confirmation of the phone's to `to`.
async fn decide(tx: &impl Tx, id: &str, phone_id: &str, to: ConfirmationState, now: Millis) -> StoreResult<bool> {
    let moved = tx
        .execute(
            "UPDATE phone_confirmations SET state = $3, decided_at = $4, ceremony = NULL
             WHERE id = $1 AND phone_id = $2 AND state = $5 AND expires_at > $4",
            &[id.into(), phone_id.into(), to.as_str().into(), now.0.into(), WAITING.as_str().into()],
        )
        .await?;
    Ok(moved == 1)
}

/// Marks used the session's allowed, unexpired confirmation of `purpose`
/// (from `phone_id`, if given): the compare-and-set that makes it single
/// use.
pub(super) async fn use_allowed(
    tx: &impl Tx,
    session: &SecretHash,
    phone_id: Option<&str>,
    purpose: ConfirmationPurpose,
    now: Millis,
) -> StoreResult<bool> {
    let used = tx
        .execute(
            "UPDATE phone_confirmations SET state = $3
             WHERE session_hash = $1 AND purpose = $2 AND state = $4 AND expires_at > $5 AND phone_id = COALESCE($6, phone_id)",
            &[
                session.0[..].into(),
                purpose.as_str().into(),
                ConfirmationState::Used.as_str().into(),
                ConfirmationState::Allowed.as_str().into(),
                now.0.into(),
                phone_id.into(),
            ],
        )
        .await?;
    Ok(used >= 1)
}

fn confirmation(row: &Row) -> StoreResult<PhoneConfirmation> {
    let purpose: String = row.get(3)?;
    let state: String = row.get(6)?;
    Ok(PhoneConfirmation {
        id: row.get(0)?,
        user_id: row.get(1)?,
        phone_id: row.get(2)?,
        purpose: ConfirmationPurpose::parse(&purpose).ok_or_else(|| StoreError::Corrupt(format!("confirmation purpose {purpose}")))?,
        from_ip: row.get(4)?,
        from_browser: row.get(5)?,
        state: ConfirmationState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("confirmation state {state}")))?,
        created_at: Millis(row.get(7)?),
        expires_at: Millis(row.get(8)?),
    })
}
