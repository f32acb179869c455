//! The append-only audit log and the approval evidence (a trigger refuses
//! any UPDATE of either; rows leave only through the retention purge).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::model::AuditEvent;
use crate::store::{AuditEntry, AuditQuery, AuditRow, Scope, StoreResult};

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

/// The scope's condition on `a` (the log) joined, for a company, with `u`.
pub(super) fn scope_sql(scope: Scope<'_>, alias: &str) -> (String, String) {
    match scope {
        Scope::User(_) => (String::new(), format!("{alias}.user_id = ?1")),
        Scope::Company(_) => (format!("JOIN users u ON u.id = {alias}.user_id"), "u.company_id = ?1".to_owned()),
    }
}

pub(super) fn scope_id(scope: Scope<'_>) -> &str {
    match scope {
        Scope::User(id) | Scope::Company(id) => id,
    }
}

pub(super) fn log(conn: &Connection, query: &AuditQuery<'_>) -> StoreResult<Vec<AuditEntry>> {
    let (join, condition) = scope_sql(query.scope, "a");
    let sql = format!(
        "SELECT a.at, a.kind, a.partner_id, a.user_id, a.session_id, a.detail, a.client_ip, a.user_agent, a.id
         FROM audit_events a {join}
         WHERE {condition} AND (?2 IS NULL OR substr(a.kind, 1, length(?2) + 1) = ?2 || '.') AND (?3 IS NULL OR a.id < ?3)
         ORDER BY a.id DESC LIMIT ?4"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![scope_id(query.scope), query.category, query.before_id, query.limit], |r| {
        Ok((read_row(r)?, r.get::<_, i64>(8)?))
    })?;
    rows.map(|row| {
        let (row, id) = row?;
        Ok(AuditEntry { id, row: parse_row(row)? })
    })
    .collect()
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
