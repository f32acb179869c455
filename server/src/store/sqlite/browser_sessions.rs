//! The account area's browser sessions, keyed by their secret's hash.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, sms};
use crate::binding::Proofs;
use crate::clock::Millis;
use crate::model::{AuditEvent, BrowserSession, Liveness, NewBrowserSession, Stage, StepUpAttempt};
use crate::store::{StepUpCode, StoreError, StoreResult};
use crate::token::SecretHash;

pub(super) fn open(tx: &Connection, new: &NewBrowserSession<'_>, event: &AuditEvent) -> StoreResult<()> {
    if let Some(old) = &new.replaces {
        tx.prepare_cached("DELETE FROM browser_sessions WHERE token_hash = ?")?.execute([&old.0[..]])?;
    }
    tx.prepare_cached(
        "INSERT INTO browser_sessions (token_hash, user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at)
         VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        &new.token_hash.0[..],
        new.user_id,
        new.stage.as_str(),
        new.now.0,
        new.proofs.knowledge_at.map(|t| t.0),
        new.proofs.possession_at.map(|t| t.0),
        new.proofs.phone_at.map(|t| t.0)
    ])?;
    audit::append(tx, event)
}

type Row = (String, String, i64, i64, Option<i64>, Option<i64>, Option<i64>);

/// The session if alive; with `touch`, marks this use (in the same statement).
pub(super) fn find(conn: &Connection, hash: &SecretHash, alive: Liveness, touch: bool) -> StoreResult<Option<BrowserSession>> {
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
    };
    let row = if touch {
        conn.prepare_cached(
            "UPDATE browser_sessions SET last_seen_at = ?4
             WHERE token_hash = ?1 AND last_seen_at > ?2 AND created_at > ?3
             RETURNING user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at",
        )?
        .query_row(params![&hash.0[..], alive.idle_cutoff(), alive.age_cutoff(), alive.now.0], read)
        .optional()?
    } else {
        conn.prepare_cached(
            "SELECT user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at FROM browser_sessions
             WHERE token_hash = ?1 AND last_seen_at > ?2 AND created_at > ?3",
        )?
        .query_row(params![&hash.0[..], alive.idle_cutoff(), alive.age_cutoff()], read)
        .optional()?
    };
    row.map(parse).transpose()
}

pub(super) fn parse((user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at): Row) -> StoreResult<BrowserSession> {
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Corrupt(format!("unknown browser session stage {stage:?}")))?;
    let proofs =
        Proofs { knowledge_at: knowledge_at.map(Millis), possession_at: possession_at.map(Millis), phone_at: phone_at.map(Millis) };
    Ok(BrowserSession { user_id, stage, created_at: Millis(created_at), last_seen_at: Millis(last_seen_at), proofs })
}

pub(super) fn end(tx: &Connection, hash: &SecretHash, event: &AuditEvent) -> StoreResult<bool> {
    let ended = tx.prepare_cached("DELETE FROM browser_sessions WHERE token_hash = ?")?.execute([&hash.0[..]])? > 0;
    if ended {
        audit::append(tx, event)?;
    }
    Ok(ended)
}

pub(super) fn end_all_of_user(tx: &Connection, user_id: &str, event: &AuditEvent) -> StoreResult<u64> {
    let ended = end_others(tx, user_id, None)?;
    audit::append(tx, event)?;
    Ok(ended)
}

/// Ends the user's browser sessions but `keep`, and their trusted browsers.
pub(super) fn end_others(tx: &Connection, user_id: &str, keep: Option<&SecretHash>) -> StoreResult<u64> {
    let keep: &[u8] = keep.map_or(&[], |k| &k.0[..]);
    let ended = tx.prepare_cached("DELETE FROM browser_sessions WHERE user_id = ? AND token_hash <> ?")?.execute(params![user_id, keep])?;
    tx.prepare_cached("DELETE FROM trusted_devices WHERE user_id = ?")?.execute([user_id])?;
    Ok(u64::try_from(ended).unwrap_or(u64::MAX))
}

pub(super) fn record_proofs(tx: &Connection, hash: &SecretHash, proofs: Proofs, event: &AuditEvent) -> StoreResult<bool> {
    let recorded = tx
        .prepare_cached(
            "UPDATE browser_sessions SET knowledge_at = COALESCE(?2, knowledge_at), possession_at = COALESCE(?3, possession_at),
                 phone_at = COALESCE(?4, phone_at), step_up_mac = CASE WHEN ?3 IS NULL AND ?4 IS NULL THEN step_up_mac END
             WHERE token_hash = ?1",
        )?
        .execute(params![&hash.0[..], proofs.knowledge_at.map(|t| t.0), proofs.possession_at.map(|t| t.0), proofs.phone_at.map(|t| t.0)])?
        == 1;
    if recorded {
        audit::append(tx, event)?;
    }
    Ok(recorded)
}

pub(super) fn save_step_up_code(tx: &Connection, code: &StepUpCode<'_>) -> StoreResult<Result<(), i64>> {
    let saved = tx
        .prepare_cached(
            "UPDATE browser_sessions SET step_up_mac = ?2, step_up_sent_at = ?3, step_up_failures = 0
             WHERE token_hash = ?1 AND (step_up_sent_at IS NULL OR step_up_sent_at <= ?3 - ?4)",
        )?
        .execute(params![&code.session.0[..], &code.mac.0[..], code.now.0, code.resend_after_ms])?
        == 1;
    if !saved {
        let sent_at: Option<i64> = tx
            .prepare_cached("SELECT step_up_sent_at FROM browser_sessions WHERE token_hash = ?")?
            .query_row([&code.session.0[..]], |r| r.get(0))
            .optional()?
            .flatten();
        return Ok(Err(sent_at.map_or(code.resend_after_ms, |at| at + code.resend_after_ms - code.now.0).max(1)));
    }
    sms::insert(tx, code.sms)?;
    audit::append(tx, code.audit)?;
    Ok(Ok(()))
}

pub(super) fn reserve_step_up_attempt(tx: &Connection, hash: &SecretHash, max: u32, not_before: Millis) -> StoreResult<StepUpAttempt> {
    let row = tx
        .prepare_cached(
            "UPDATE browser_sessions SET step_up_failures = step_up_failures + 1
             WHERE token_hash = ?1 AND step_up_mac IS NOT NULL AND step_up_sent_at >= ?2 AND step_up_failures < ?3
             RETURNING step_up_mac, step_up_failures",
        )?
        .query_row(params![&hash.0[..], not_before.0, max], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, u32>(1)?)))
        .optional()?;
    match row {
        None => Ok(StepUpAttempt::Missing),
        Some((mac, failures)) => {
            let mac =
                <[u8; 32]>::try_from(mac.as_slice()).map_err(|_| StoreError::Corrupt("a step-up code's MAC is not 32 bytes".into()))?;
            Ok(StepUpAttempt::Reserved { mac: SecretHash(mac), failures })
        }
    }
}
