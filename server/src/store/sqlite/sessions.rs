//! SCA sessions: opening one within the limits, look-ups by token, the
//! compare-and-set transitions of the state machine, and the replay with
//! its idempotency key.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{audit, ledger, limits, sms};
use crate::clock::Millis;
use crate::ledger::Created;
use crate::model::{AuditEvent, Fingerprint, Owner, State};
use crate::sms::OutgoingSms;
use crate::store::rows::{OtpRow, SessionRow};
use crate::store::{KeyWindow, Limits, NewSession, RememberedResponse, Replay, ReplayOutcome, SessionOpened, StoreError, StoreResult};
use crate::token::SecretHash;

/// The columns of [`SESSION_COLUMNS`], for `concat!`.
macro_rules! session_columns {
    () => {
        "id, partner_id, user_id, method, action_type, fingerprint, summary, state, created_at, expires_at, decided_at"
    };
}
pub(super) use session_columns;

/// Reads the [`SESSION_COLUMNS`] starting at column 0.
pub(super) fn session_row(r: &Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        partner_id: r.get(1)?,
        user_id: r.get(2)?,
        method: r.get(3)?,
        action_type: r.get(4)?,
        fingerprint: r.get(5)?,
        summary: r.get(6)?,
        state: r.get(7)?,
        created_at: r.get(8)?,
        expires_at: r.get(9)?,
        decided_at: r.get(10)?,
    })
}

#[cfg(test)]
#[test]
fn the_column_lists_agree() {
    assert_eq!(session_columns!(), crate::store::rows::SESSION_COLUMNS);
}

/// Opens a waiting session unless a limit refuses it; the SMS and the
/// audit event in the same transaction: all of them exist, or none.
pub(super) fn open(
    tx: &Connection,
    new: &NewSession<'_>,
    summary: &str,
    limits: &Limits,
    sms: Option<&OutgoingSms>,
    audit_event: &AuditEvent,
) -> StoreResult<SessionOpened> {
    let now = new.created_at;
    // In the order of `Storage::open_session`. A refusal returns before
    // anything is written: a refusal is an `Ok`, and the group commit
    // keeps what an `Ok` wrote.
    if let Some(otp) = &new.otp {
        if let Some(retry_after_ms) = otp_wait(tx, new, otp.resend_after_ms)? {
            return Ok(SessionOpened::TooSoon { retry_after_ms });
        }
    }
    if let Some((limit, retry_after_ms)) = limits::check_open(tx, new.owner, limits, sms.is_some(), now)? {
        return Ok(SessionOpened::Limited { limit, retry_after_ms });
    }
    // Only now that the new code will be sent does the old one stop working.
    if new.otp.is_some() {
        deny_waiting_otps(tx, new)?;
    }
    let id = super::new_id();
    tx.prepare_cached(
        "INSERT INTO sca_sessions (id, token_hash, link_hash, partner_id, user_id, method, action_type,
             fingerprint, summary, state, created_at, expires_at, otp_hash)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?)",
    )?
    .execute(params![
        id,
        &new.token_hash.0[..],
        new.link_hash.as_ref().map(|h| &h.0[..]),
        new.owner.partner_id,
        new.owner.user_id,
        new.method.as_str(),
        new.action.action_type(),
        &new.fingerprint.0[..],
        summary,
        now.0,
        new.expires_at.0,
        new.otp.as_ref().map(|otp| &otp.mac.0[..]),
    ])?;
    if let Some(sms) = sms {
        sms::insert(tx, sms)?;
    }
    audit::append_for_session(tx, audit_event, &id)?;
    Ok(SessionOpened::Opened(id))
}

/// How long a new code for the same request must still wait: the owner's
/// newest waiting one was sent less than `resend_after_ms` ago.
fn otp_wait(tx: &Connection, new: &NewSession<'_>, resend_after_ms: i64) -> StoreResult<Option<i64>> {
    let now = new.created_at.0;
    let owner = new.owner;
    let latest: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(created_at) FROM sca_sessions
             WHERE user_id = ?1 AND state = 'waiting' AND method = 'sms-otp' AND partner_id = ?2 AND fingerprint = ?3",
        )?
        .query_row(params![owner.user_id, owner.partner_id, &new.fingerprint.0[..]], |r| r.get(0))?;
    // A code "sent" in the future (a clock step back) does not hold the next one.
    if let Some(sent) = latest.filter(|sent| *sent + resend_after_ms > now && *sent <= now) {
        return Ok(Some(sent + resend_after_ms - now));
    }
    Ok(None)
}

/// The owner's waiting codes for the same request are superseded (denied).
fn deny_waiting_otps(tx: &Connection, new: &NewSession<'_>) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE sca_sessions SET state = 'deny', decided_at = ?4
         WHERE user_id = ?1 AND state = 'waiting' AND method = 'sms-otp' AND partner_id = ?2 AND fingerprint = ?3",
    )?
    .execute(params![new.owner.user_id, new.owner.partner_id, &new.fingerprint.0[..], new.created_at.0])?;
    Ok(())
}

/// The owner's newest waiting `sms-otp` session, the one for `fingerprint` first.
pub(super) fn otp_session(conn: &Connection, owner: &Owner, fingerprint: &Fingerprint) -> StoreResult<Option<OtpRow>> {
    const SQL: &str = concat!(
        "SELECT ",
        session_columns!(),
        ", token_hash, otp_hash FROM sca_sessions
         WHERE user_id = ?1 AND state = 'waiting' AND method = 'sms-otp' AND partner_id = ?2 AND otp_hash IS NOT NULL
         ORDER BY fingerprint = ?3 DESC, created_at DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(SQL)?
        .query_row(params![owner.user_id, owner.partner_id, &fingerprint.0[..]], |r| {
            Ok(OtpRow { session: session_row(r)?, token_hash: r.get(11)?, mac: r.get(12)? })
        })
        .optional()?)
}

pub(super) fn by_token(conn: &Connection, hash: &SecretHash) -> StoreResult<Option<SessionRow>> {
    const SQL: &str = concat!("SELECT ", session_columns!(), " FROM sca_sessions WHERE token_hash = ?");
    Ok(conn.prepare_cached(SQL)?.query_row([&hash.0[..]], session_row).optional()?)
}

pub(super) fn record_poll(
    tx: &Connection,
    token_hash: &SecretHash,
    owner: &Owner,
    mock_only: bool,
    now: Millis,
    min_gap_ms: i64,
) -> StoreResult<Option<SessionRow>> {
    const SQL: &str = concat!(
        "UPDATE sca_sessions SET last_polled_at = ?1
         WHERE token_hash = ?2 AND partner_id = ?3 AND user_id = ?4 AND (?5 = 0 OR method = 'mock')
           AND (last_polled_at IS NULL OR last_polled_at <= ?6 OR last_polled_at > ?7)
         RETURNING ",
        session_columns!()
    );
    // A poll time more than a gap ahead (a clock stepped back) must not
    // lock polling out; one just ahead is a concurrent poll that read the
    // clock later and wrote first: it counts.
    Ok(tx
        .prepare_cached(SQL)?
        .query_row(
            params![now.0, &token_hash.0[..], owner.partner_id, owner.user_id, mock_only, now.0 - min_gap_ms, now.0 + min_gap_ms],
            session_row,
        )
        .optional()?)
}

/// Moves a waiting, unexpired session to `to`; false if it was not.
pub(super) fn decide(tx: &Connection, session_id: &str, to: State, now: Millis) -> StoreResult<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE sca_sessions SET state = ?1, decided_at = ?2
             WHERE id = ?3 AND state = 'waiting' AND expires_at > ?2",
        )?
        .execute(params![to.as_str(), now.0, session_id])?;
    Ok(changed == 1)
}

pub(super) fn consume_and_run(tx: &Connection, replay: &Replay<'_>) -> StoreResult<ReplayOutcome> {
    let caller = replay.caller;
    // A key already used (by this request: its response; by another: refused).
    if let Some(key) = replay.idempotency {
        if let Some(remembered) = remembered(tx, &caller.owner.partner_id, key)? {
            return Ok(if remembered.answers(&caller.owner, replay.fingerprint) {
                ReplayOutcome::Remembered(remembered.created)
            } else {
                ReplayOutcome::KeyReused
            });
        }
    }
    let consumed: Option<String> = tx
        .prepare_cached(
            "UPDATE sca_sessions SET state = 'consumed', consumed_at = ?1
             WHERE token_hash = ?2 AND partner_id = ?3 AND user_id = ?4 AND fingerprint = ?5
               AND state = 'allow' AND expires_at > ?1
             RETURNING id",
        )?
        .query_row(
            params![replay.now.0, &replay.token_hash.0[..], caller.owner.partner_id, caller.owner.user_id, &replay.fingerprint.0[..]],
            |r| r.get(0),
        )
        .optional()?;
    let Some(session_id) = consumed else {
        return Ok(ReplayOutcome::Refused);
    };
    let created = ledger::run_action(tx, &session_id, caller, replay.action, replay.now)?;
    if let Some(key) = replay.idempotency {
        remember(tx, &caller.owner, key.key, replay.fingerprint, &created, replay.now)?;
    }
    Ok(ReplayOutcome::Ran(created))
}

pub(super) fn remembered(conn: &Connection, partner_id: &str, key: KeyWindow<'_>) -> StoreResult<Option<RememberedResponse>> {
    let row: Option<(String, Vec<u8>, String)> = conn
        .prepare_cached("SELECT user_id, fingerprint, body FROM idempotency_keys WHERE partner_id = ? AND key = ? AND created_at >= ?")?
        .query_row(params![partner_id, key.key, key.not_before.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(user_id, fingerprint, body)| {
        let fingerprint = fingerprint.try_into().map_err(|_| StoreError::Corrupt("an idempotency fingerprint".into()))?;
        Ok(RememberedResponse { user_id, fingerprint: Fingerprint(fingerprint), created: Created(body) })
    })
    .transpose()
}

/// Keeps the response for the key, replacing one that ran out.
fn remember(tx: &Connection, owner: &Owner, key: &str, fingerprint: &Fingerprint, created: &Created, now: Millis) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO idempotency_keys (partner_id, key, user_id, fingerprint, status, body, created_at) VALUES (?, ?, ?, ?, 201, ?, ?)
         ON CONFLICT (partner_id, key) DO UPDATE
         SET user_id = excluded.user_id, fingerprint = excluded.fingerprint, status = excluded.status, body = excluded.body,
             created_at = excluded.created_at",
    )?
    .execute(params![owner.partner_id, key, owner.user_id, &fingerprint.0[..], created.0, now.0])?;
    Ok(())
}
