//! The account area's browser sessions, keyed by their secret's hash.

use rusqlite::{params, Connection, OptionalExtension};

use super::audit;
use crate::clock::Millis;
use crate::model::{AuditEvent, BrowserSession, Liveness, NewBrowserSession, Stage};
use crate::store::{StoreError, StoreResult};
use crate::token::SecretHash;

pub(super) fn open(tx: &Connection, new: &NewBrowserSession<'_>, event: &AuditEvent) -> StoreResult<()> {
    if let Some(old) = &new.replaces {
        tx.prepare_cached("DELETE FROM browser_sessions WHERE token_hash = ?")?.execute([&old.0[..]])?;
    }
    tx.prepare_cached("INSERT INTO browser_sessions (token_hash, user_id, stage, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)")?
        .execute(params![&new.token_hash.0[..], new.user_id, new.stage.as_str(), new.now.0])?;
    audit::append(tx, event)
}

type Row = (String, String, i64, i64);

/// The session if alive; with `touch`, marks this use (in the same statement).
pub(super) fn find(conn: &Connection, hash: &SecretHash, alive: Liveness, touch: bool) -> StoreResult<Option<BrowserSession>> {
    let read = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Row> { Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)) };
    let row = if touch {
        conn.prepare_cached(
            "UPDATE browser_sessions SET last_seen_at = ?4
             WHERE token_hash = ?1 AND last_seen_at > ?2 AND created_at > ?3
             RETURNING user_id, stage, created_at, last_seen_at",
        )?
        .query_row(params![&hash.0[..], alive.idle_cutoff(), alive.age_cutoff(), alive.now.0], read)
        .optional()?
    } else {
        conn.prepare_cached(
            "SELECT user_id, stage, created_at, last_seen_at FROM browser_sessions
             WHERE token_hash = ?1 AND last_seen_at > ?2 AND created_at > ?3",
        )?
        .query_row(params![&hash.0[..], alive.idle_cutoff(), alive.age_cutoff()], read)
        .optional()?
    };
    row.map(parse).transpose()
}

pub(super) fn parse((user_id, stage, created_at, last_seen_at): Row) -> StoreResult<BrowserSession> {
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Corrupt(format!("unknown browser session stage {stage:?}")))?;
    Ok(BrowserSession { user_id, stage, created_at: Millis(created_at), last_seen_at: Millis(last_seen_at) })
}

pub(super) fn end(tx: &Connection, hash: &SecretHash, event: &AuditEvent) -> StoreResult<bool> {
    let ended = tx.prepare_cached("DELETE FROM browser_sessions WHERE token_hash = ?")?.execute([&hash.0[..]])? > 0;
    if ended {
        audit::append(tx, event)?;
    }
    Ok(ended)
}

pub(super) fn end_all_of_user(tx: &Connection, user_id: &str, event: &AuditEvent) -> StoreResult<u64> {
    let ended = tx.prepare_cached("DELETE FROM browser_sessions WHERE user_id = ?")?.execute([user_id])?;
    audit::append(tx, event)?;
    Ok(u64::try_from(ended).unwrap_or(u64::MAX))
}
