//! The append-only audit log and the approval evidence (a trigger refuses
//! any UPDATE of either; rows leave only through the retention purge),
//! each a hash chain (`crate::chain`): an append takes the chain's next
//! position from `chain_heads`, stores the row's hash and MAC, and moves
//! the head. The MAC is computed by `passgate_chain_mac`, a function the
//! store registers on its connection with the key (never in the file).

use rusqlite::functions::FunctionFlags;
use rusqlite::{params, Connection, OptionalExtension};

use crate::chain::{self, Chain, ChainKey};
use crate::clock::Millis;
use crate::model::AuditEvent;
use crate::store::rows::{AuditColumns, EvidenceColumns, AUDIT_CHAINED, EVIDENCE_CHAINED};
use crate::store::{Anchor, AuditEntry, AuditQuery, AuditRow, ChainRow, ChainState, Scope, StoreError, StoreResult};

/// Gives `conn` the SQL function `passgate_chain_mac(chain, hash)`.
pub(super) fn register_chain_mac(conn: &Connection, key: ChainKey) -> rusqlite::Result<()> {
    conn.create_scalar_function("passgate_chain_mac", 2, FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC, move |ctx| {
        let table: String = ctx.get(0)?;
        let hash: Vec<u8> = ctx.get(1)?;
        let chain = Chain::ALL.into_iter().find(|c| c.table() == table);
        match (chain, chain::hash_of(&hash)) {
            (Some(chain), Some(hash)) => Ok(key.mac(chain, &hash).to_vec()),
            _ => Err(rusqlite::Error::UserFunctionError(format!("no chain {table:?}, or not a hash").into())),
        }
    })
}

/// Takes the next position of `chain`: the new row's `seq` and the hash
/// of the row before it. (The head row is the chain's turn.)
fn advance(tx: &Connection, chain: Chain) -> StoreResult<(i64, [u8; 32])> {
    let (seq, hash): (i64, Vec<u8>) = tx
        .prepare_cached("UPDATE chain_heads SET seq = seq + 1 WHERE chain = ? RETURNING seq, hash")?
        .query_row([chain.table()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let hash = chain::hash_of(&hash).ok_or_else(|| StoreError::Corrupt(format!("the head of {} is not a hash", chain.table())))?;
    Ok((seq, hash))
}

fn move_head(tx: &Connection, chain: Chain, hash: &[u8; 32]) -> StoreResult<()> {
    tx.prepare_cached("UPDATE chain_heads SET hash = ? WHERE chain = ?")?.execute(params![&hash[..], chain.table()])?;
    Ok(())
}

pub(super) fn append(tx: &Connection, event: &AuditEvent) -> StoreResult<()> {
    insert(tx, event, event.session_id.as_deref())
}

/// Appends `event` about the session `session_id` (one just created).
pub(super) fn append_for_session(tx: &Connection, event: &AuditEvent, session_id: &str) -> StoreResult<()> {
    insert(tx, event, Some(session_id))
}

fn insert(tx: &Connection, event: &AuditEvent, session_id: Option<&str>) -> StoreResult<()> {
    let detail = event.detail.to_string();
    let client_ip = event.client.ip.map(|ip| ip.to_string());
    let columns = AuditColumns {
        at: event.at.0,
        kind: event.kind.as_str(),
        partner_id: event.partner_id.as_deref(),
        user_id: event.user_id.as_deref(),
        session_id,
        detail: &detail,
        client_ip: client_ip.as_deref(),
        user_agent: event.client.user_agent.as_deref(),
    };
    let (seq, previous) = advance(tx, Chain::AuditEvents)?;
    let hash = chain::next_hash(&previous, seq, &columns.chained());
    tx.prepare_cached(
        "INSERT INTO audit_events (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent, seq, chain_hash, chain_mac)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, passgate_chain_mac('audit_events', ?10))",
    )?
    .execute(params![
        columns.at,
        columns.kind,
        columns.partner_id,
        columns.user_id,
        columns.session_id,
        columns.detail,
        columns.client_ip,
        columns.user_agent,
        seq,
        &hash[..],
    ])?;
    move_head(tx, Chain::AuditEvents, &hash)
}

pub(super) fn keep_evidence(tx: &Connection, session_id: &str, evidence: &str, now: Millis) -> StoreResult<()> {
    let columns = EvidenceColumns { session_id, at: now.0, evidence };
    let (seq, previous) = advance(tx, Chain::ApprovalEvidence)?;
    let hash = chain::next_hash(&previous, seq, &columns.chained());
    tx.prepare_cached(
        "INSERT INTO approval_evidence (session_id, at, evidence, seq, chain_hash, chain_mac)
         VALUES (?1, ?2, ?3, ?4, ?5, passgate_chain_mac('approval_evidence', ?5))",
    )?
    .execute(params![session_id, now.0, evidence, seq, &hash[..]])?;
    move_head(tx, Chain::ApprovalEvidence, &hash)
}

/// Where `chain` stands: its head, its newest anchor, its unchained rows.
pub(super) fn chain_state(conn: &Connection, chain: Chain) -> StoreResult<ChainState> {
    let table = chain.table();
    let (head_seq, head_hash): (i64, Vec<u8>) =
        conn.prepare_cached("SELECT seq, hash FROM chain_heads WHERE chain = ?")?.query_row([table], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let anchor = conn
        .prepare_cached("SELECT seq, hash, mac FROM chain_anchors WHERE chain = ? ORDER BY seq DESC LIMIT 1")?
        .query_row([table], |r| Ok(Anchor { seq: r.get(0)?, hash: r.get(1)?, mac: r.get(2)? }))
        .optional()?;
    // Table names from the model's enum, never from input.
    let (unchained, unchained_after_start): (i64, i64) = conn.query_row(
        &format!(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE id > (SELECT MIN(id) FROM {table} WHERE seq IS NOT NULL))
             FROM {table} WHERE seq IS NULL"
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(ChainState {
        head_seq,
        head_hash,
        anchor,
        unchained: u64::try_from(unchained).unwrap_or(0),
        unchained_after_start: u64::try_from(unchained_after_start).unwrap_or(0),
    })
}

/// Up to `limit` chained rows of `chain` after position `after`, in order.
pub(super) fn chain_rows(conn: &Connection, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<ChainRow>> {
    let table = chain.table();
    let columns = match chain {
        Chain::AuditEvents => AUDIT_CHAINED,
        Chain::ApprovalEvidence => EVIDENCE_CHAINED,
    };
    let mut statement =
        conn.prepare_cached(&format!("SELECT id, seq, chain_hash, chain_mac, {columns} FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?"))?;
    let rows = statement.query_map(params![after, limit], |r| {
        let seq: i64 = r.get(1)?;
        let (at, content) = match chain {
            Chain::AuditEvents => {
                let (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent): Row =
                    (r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get(11)?);
                let columns = AuditColumns {
                    at,
                    kind: &kind,
                    partner_id: partner_id.as_deref(),
                    user_id: user_id.as_deref(),
                    session_id: session_id.as_deref(),
                    detail: &detail,
                    client_ip: client_ip.as_deref(),
                    user_agent: user_agent.as_deref(),
                };
                (at, chain::canonical(seq, &columns.chained()))
            }
            Chain::ApprovalEvidence => {
                let (session_id, at, evidence): (String, i64, String) = (r.get(4)?, r.get(5)?, r.get(6)?);
                (at, chain::canonical(seq, &EvidenceColumns { session_id: &session_id, at, evidence: &evidence }.chained()))
            }
        };
        Ok(ChainRow {
            id: r.get(0)?,
            seq,
            at,
            content,
            hash: r.get::<_, Option<Vec<u8>>>(2)?.unwrap_or_default(),
            mac: r.get::<_, Option<Vec<u8>>>(3)?.unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
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

/// The retention purge of one chain: the unchained rows of before the
/// chain, by id; then the oldest run of chained rows that is older than
/// `cutoff` and verifies (`chain::purgeable`), whole, leaving an anchor
/// MACed under the key (the position and hash verification starts from).
pub(super) fn purge_chain(tx: &Connection, chain: Chain, cutoff: Millis, limit: u32, now: Millis) -> StoreResult<u64> {
    let table = chain.table();
    // Table names from the model's enum, never from input.
    let legacy = tx
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE seq IS NULL ORDER BY id LIMIT ?2) AND at < ?1"
        ))?
        .execute(params![cutoff.0, limit])?;
    let anchor: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM chain_anchors WHERE chain = ? ORDER BY seq DESC LIMIT 1")?
        .query_row([table], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (start, start_hash) = anchor.unwrap_or((0, chain::GENESIS.to_vec()));
    let rows = chain_rows(tx, chain, start, limit)?;
    let mut aged = Vec::with_capacity(rows.len());
    for row in &rows {
        let mac_ok: bool = tx
            .prepare_cached("SELECT passgate_chain_mac(?1, ?2) = ?3")?
            .query_row(params![table, row.hash, row.mac], |r| r.get(0))
            .unwrap_or(false);
        aged.push(chain::Aged { seq: row.seq, at: row.at, content: &row.content, hash: &row.hash, mac_ok });
    }
    let Some((last, hash)) = chain::purgeable(&aged, start, &start_hash, cutoff.0) else {
        return Ok(count(legacy));
    };
    let removed = tx.prepare_cached(&format!("DELETE FROM {table} WHERE seq > ?1 AND seq <= ?2"))?.execute(params![start, last])?;
    if removed > 0 {
        tx.prepare_cached("INSERT INTO chain_anchors (chain, seq, hash, mac, at) VALUES (?1, ?2, ?3, passgate_chain_mac(?1, ?4), ?5)")?
            .execute(params![table, last, &hash[..], &chain::anchor_digest(last, &hash)[..], now.0])?;
    }
    Ok(count(legacy) + count(removed))
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
