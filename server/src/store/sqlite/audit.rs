//! The append-only audit log and the approval evidence (a trigger refuses
//! any UPDATE of either; rows leave only through the retention purge).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::model::AuditEvent;
use crate::store::{AuditRow, StoreResult};

pub(super) fn append(tx: &Connection, event: &AuditEvent) -> StoreResult<()> {
    insert(tx, event, event.session_id.as_deref())
}

/// Appends `event` about the session `session_id` (one just created).
pub(super) fn append_for_session(tx: &Connection, event: &AuditEvent, session_id: &str) -> StoreResult<()> {
    insert(tx, event, Some(session_id))
}

fn insert(tx: &Connection, event: &AuditEvent, session_id: Option<&str>) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO audit_events (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        event.at.0,
        event.kind.as_str(),
        event.partner_id,
        event.user_id,
        session_id,
        event.detail.to_string(),
        event.client.ip.map(|ip| ip.to_string()),
        event.client.user_agent,
    ])?;
    Ok(())
}

pub(super) fn keep_evidence(tx: &Connection, session_id: &str, evidence: &str, now: Millis) -> StoreResult<()> {
    tx.prepare_cached("INSERT INTO approval_evidence (session_id, at, evidence) VALUES (?, ?, ?)")?
        .execute(params![session_id, now.0, evidence])?;
    Ok(())
}

pub(super) fn of_session(conn: &Connection, session_id: &str) -> StoreResult<Vec<AuditRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent
         FROM audit_events WHERE session_id = ? ORDER BY id",
    )?;
    let rows = statement.query_map([session_id], read_row)?;
    rows.map(|row| parse_row(row?)).collect()
}

pub(super) fn of_user(conn: &Connection, user_id: &str, limit: u32) -> StoreResult<Vec<AuditRow>> {
    let mut statement = conn.prepare_cached(
        "SELECT at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent
         FROM audit_events WHERE user_id = ? ORDER BY id DESC LIMIT ?",
    )?;
    let rows = statement.query_map(params![user_id, limit], read_row)?;
    rows.map(|row| parse_row(row?)).collect()
}

type Row = (i64, String, Option<String>, Option<String>, Option<String>, String, Option<String>, Option<String>);

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?))
}

fn parse_row((at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent): Row) -> StoreResult<AuditRow> {
    Ok(AuditRow {
        at: Millis(at).to_rfc3339(),
        kind,
        partner_id,
        user_id,
        session_id,
        detail: serde_json::from_str(&detail)?,
        client_ip,
        user_agent,
    })
}

pub(super) fn evidence_of_session(conn: &Connection, session_id: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT evidence FROM approval_evidence WHERE session_id = ?")?
        .query_row([session_id], |r| r.get(0))
        .optional()?)
}
