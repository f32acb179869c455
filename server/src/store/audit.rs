//! The append-only audit log and the approval evidence (a trigger refuses
//! any UPDATE of either; rows leave only through the retention purge),
//! each a hash chain (`crate::chain`), written once for both databases.
//! An append takes the next position of its chain from `chain_heads` (the
//! head's row is the chain's turn: on PostgreSQL the update locks it until
//! the commit), stores its hash and its MAC under the transaction's chain
//! key (never sent to the database), and moves the head.

use super::rows::{AuditColumns, EvidenceColumns, AUDIT_CHAINED, EVIDENCE_CHAINED};
use super::sql::{Dialect, End, Kind, Row, Tx};
use super::{outbox, run, Anchor, AuditEntry, AuditQuery, AuditRow, ChainRow, ChainState, Scope, Store, StoreError, StoreResult};
use crate::chain::{self, Chain};
use crate::clock::Millis;
use crate::model::AuditEvent;
use crate::sms::OutgoingSms;

impl Store {
    /// Where `chain` stands: its head, its newest anchor, its unchained
    /// rows; one snapshot.
    pub async fn chain_state(&self, chain: Chain) -> StoreResult<ChainState> {
        run!(self, Kind::Read, |tx| chain_state(tx, chain))
    }

    /// Up to `limit` chained rows of `chain` after position `after`, in order.
    pub async fn chain_rows(&self, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<ChainRow>> {
        run!(self, Kind::Read, |tx| async { chain_rows(tx, chain, after, limit).await.map(End::Commit) })
    }

    /// Removes at most `limit` of the chain's oldest rows older than
    /// `cutoff`: only a whole run that verifies, leaving an anchor made at
    /// `now`; the count removed. On PostgreSQL only the tables' owner may
    /// ([`StoreError::NotPermitted`] to the application's role).
    pub async fn purge_chain(&self, chain: Chain, cutoff: Millis, limit: u32, now: Millis) -> StoreResult<u64> {
        // Lost to a power cut, a purge only runs again.
        run!(self, Kind::Relaxed, |tx| purge_chain(tx, chain, cutoff, limit, now))
    }

    /// Appends `event` to the log. Relaxed: an event logged on its own (a
    /// refusal, a sign-in) records no decision a power cut could undo.
    pub async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Relaxed, |tx| async { append(tx, event, None).await.map(End::Commit) })
    }

    /// An SMS to the user (into the outbox) with its audit event, in one
    /// durable transaction: both, or neither.
    pub async fn append_notice(&self, sms: &OutgoingSms, event: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Durable, |tx| append_notice(tx, sms, event))
    }

    /// The session's events, oldest first.
    pub async fn audit_of_session(&self, session_id: &str) -> StoreResult<Vec<AuditRow>> {
        run!(self, Kind::Read, |tx| of_session(tx, session_id))
    }

    /// A user's or a company's events, newest first, a page at a time.
    pub async fn audit_log(&self, query: AuditQuery<'_>) -> StoreResult<Vec<AuditEntry>> {
        run!(self, Kind::Read, |tx| log(tx, &query))
    }

    /// The evidence kept with the session's approval, if any.
    pub async fn evidence_of_session(&self, session_id: &str) -> StoreResult<Option<String>> {
        run!(self, Kind::Read, |tx| async {
            let row = tx.query_opt("SELECT evidence FROM approval_evidence WHERE session_id = $1", &[session_id.into()]).await?;
            Ok(End::Commit(row.map(|r| r.get(0)).transpose()?))
        })
    }
}

/// Appends `event` (about `session_id`, if given, else its own).
pub(super) async fn append(tx: &impl Tx, event: &AuditEvent, session_id: Option<&str>) -> StoreResult<()> {
    let detail = event.detail.to_string();
    let client_ip = event.client.ip.map(|ip| ip.to_string());
    let columns = AuditColumns {
        at: event.at.0,
        kind: event.kind.as_str(),
        partner_id: event.partner_id.as_deref(),
        user_id: event.user_id.as_deref(),
        session_id: session_id.or(event.session_id.as_deref()),
        detail: &detail,
        client_ip: client_ip.as_deref(),
        user_agent: event.client.user_agent.as_deref(),
    };
    let (seq, previous) = advance(tx, Chain::AuditEvents).await?;
    let link = tx.chain_key().link(Chain::AuditEvents, seq, &previous, &columns.chained());
    let params = [
        columns.at.into(),
        columns.kind.into(),
        columns.partner_id.into(),
        columns.user_id.into(),
        columns.session_id.into(),
        columns.detail.into(),
        columns.client_ip.into(),
        columns.user_agent.into(),
        seq.into(),
        link.hash[..].into(),
        link.mac[..].into(),
        Chain::AuditEvents.table().into(),
    ];
    match tx.dialect() {
        // One round trip while the head's row stays locked (until the
        // commit): every audited operation of every instance queues on it.
        Dialect::Postgres => {
            tx.execute(
                "WITH appended AS (
                     INSERT INTO audit_events (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent, seq, chain_hash, chain_mac)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11))
                 UPDATE chain_heads SET hash = $10 WHERE chain = $12",
                &params,
            )
            .await?;
        }
        Dialect::Sqlite => {
            tx.execute(
                "INSERT INTO audit_events (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent, seq, chain_hash, chain_mac)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                &params[..11],
            )
            .await?;
            tx.execute("UPDATE chain_heads SET hash = $1 WHERE chain = $2", &[params[9], params[11]]).await?;
        }
    }
    Ok(())
}

/// Takes the next position of `chain`: the new row's `seq` and the hash
/// of the row before it.
pub(super) async fn advance(tx: &impl Tx, chain: Chain) -> StoreResult<(i64, [u8; 32])> {
    let row = tx.query_one("UPDATE chain_heads SET seq = seq + 1 WHERE chain = $1 RETURNING seq, hash", &[chain.table().into()]).await?;
    let hash: Vec<u8> = row.get(1)?;
    let hash = chain::hash_of(&hash).ok_or_else(|| StoreError::Corrupt(format!("the head of {} is not a hash", chain.table())))?;
    Ok((row.get(0)?, hash))
}

/// Where `chain` stands: its head, its newest anchor, its unchained rows.
async fn chain_state(tx: &impl Tx, chain: Chain) -> StoreResult<End<ChainState>> {
    let table = chain.table();
    let head = tx.query_one("SELECT seq, hash FROM chain_heads WHERE chain = $1", &[table.into()]).await?;
    let anchor =
        tx.query_opt("SELECT seq, hash, mac FROM chain_anchors WHERE chain = $1 ORDER BY seq DESC LIMIT 1", &[table.into()]).await?;
    // Table names from the model's enum, never from input.
    let unchained = tx
        .query_one(
            &format!(
                "SELECT COUNT(*), COUNT(*) FILTER (WHERE id > (SELECT MIN(id) FROM {table} WHERE seq IS NOT NULL))
                 FROM {table} WHERE seq IS NULL"
            ),
            &[],
        )
        .await?;
    Ok(End::Commit(ChainState {
        head_seq: head.get(0)?,
        head_hash: head.get(1)?,
        anchor: anchor.map(|r| Ok::<_, StoreError>(Anchor { seq: r.get(0)?, hash: r.get(1)?, mac: r.get(2)? })).transpose()?,
        unchained: u64::try_from(unchained.get::<i64>(0)?).unwrap_or(0),
        unchained_after_start: u64::try_from(unchained.get::<i64>(1)?).unwrap_or(0),
    }))
}

/// Up to `limit` chained rows of `chain` after position `after`, in
/// order, each with its content as the chain hashes it.
async fn chain_rows(tx: &impl Tx, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<ChainRow>> {
    let table = chain.table();
    let columns = match chain {
        Chain::AuditEvents => AUDIT_CHAINED,
        Chain::ApprovalEvidence => EVIDENCE_CHAINED,
    };
    // Table and column names from the model's enum, never from input.
    let rows = tx
        .query(
            &format!("SELECT id, seq, chain_hash, chain_mac, {columns} FROM {table} WHERE seq > $1 ORDER BY seq LIMIT $2"),
            &[after.into(), limit.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let seq: i64 = r.get(1)?;
            let (at, content) = match chain {
                Chain::AuditEvents => {
                    let (kind, detail): (String, String) = (r.get(5)?, r.get(9)?);
                    let text = |i: usize| r.get::<Option<String>>(i);
                    let (partner_id, user_id, session_id, client_ip, user_agent) = (text(6)?, text(7)?, text(8)?, text(10)?, text(11)?);
                    let columns = AuditColumns {
                        at: r.get(4)?,
                        kind: &kind,
                        partner_id: partner_id.as_deref(),
                        user_id: user_id.as_deref(),
                        session_id: session_id.as_deref(),
                        detail: &detail,
                        client_ip: client_ip.as_deref(),
                        user_agent: user_agent.as_deref(),
                    };
                    (columns.at, chain::canonical(seq, &columns.chained()))
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
                hash: r.get::<Option<Vec<u8>>>(2)?.unwrap_or_default(),
                mac: r.get::<Option<Vec<u8>>>(3)?.unwrap_or_default(),
            })
        })
        .collect()
}

/// The retention purge of one chain: the unchained rows of before the
/// chain, by id; then the oldest run of chained rows that is older than
/// `cutoff` and verifies (`chain::purgeable`, MACs checked under the
/// transaction's key), whole, leaving an anchor MACed under the key (the
/// position and hash verification starts from).
async fn purge_chain(tx: &impl Tx, chain: Chain, cutoff: Millis, limit: u32, now: Millis) -> StoreResult<End<u64>> {
    let table = chain.table();
    // Table names from the model's enum, never from input.
    let legacy = tx
        .execute(
            &format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE seq IS NULL ORDER BY id LIMIT $2) AND at < $1"),
            &[cutoff.0.into(), limit.into()],
        )
        .await?;
    let anchor = tx.query_opt("SELECT seq, hash FROM chain_anchors WHERE chain = $1 ORDER BY seq DESC LIMIT 1", &[table.into()]).await?;
    let (start, start_hash): (i64, Vec<u8>) = match anchor {
        Some(r) => (r.get(0)?, r.get(1)?),
        None => (0, chain::GENESIS.to_vec()),
    };
    let rows = chain_rows(tx, chain, start, limit).await?;
    let key = tx.chain_key();
    let aged: Vec<chain::Aged<'_>> = rows
        .iter()
        .map(|row| chain::Aged {
            seq: row.seq,
            at: row.at,
            content: &row.content,
            hash: &row.hash,
            // A stored hash of another length is a break, whatever its MAC.
            mac_ok: chain::hash_of(&row.hash).is_some() && key.verifies(chain, &row.hash, &row.mac),
        })
        .collect();
    let Some((last, hash)) = chain::purgeable(&aged, start, &start_hash, cutoff.0) else {
        return Ok(End::Commit(legacy));
    };
    let removed = tx.execute(&format!("DELETE FROM {table} WHERE seq > $1 AND seq <= $2"), &[start.into(), last.into()]).await?;
    if removed > 0 {
        let mac = key.mac(chain, &chain::anchor_digest(last, &hash));
        tx.execute(
            "INSERT INTO chain_anchors (chain, seq, hash, mac, at) VALUES ($1, $2, $3, $4, $5)",
            &[table.into(), last.into(), hash[..].into(), mac[..].into(), now.0.into()],
        )
        .await?;
    }
    Ok(End::Commit(legacy + removed))
}

async fn append_notice(tx: &impl Tx, sms: &OutgoingSms, event: &AuditEvent) -> StoreResult<End<()>> {
    outbox::insert(tx, sms).await?;
    append(tx, event, None).await?;
    Ok(End::Commit(()))
}

/// The columns an [`AuditRow`] is read from, in [`audit_row`]'s order.
const AUDIT_ROW: &str = "a.at, a.kind, a.partner_id, a.user_id, a.session_id, a.detail, a.client_ip, a.user_agent";

async fn of_session(tx: &impl Tx, session_id: &str) -> StoreResult<End<Vec<AuditRow>>> {
    let rows =
        tx.query(&format!("SELECT {AUDIT_ROW} FROM audit_events a WHERE a.session_id = $1 ORDER BY a.id"), &[session_id.into()]).await?;
    Ok(End::Commit(rows.iter().map(audit_row).collect::<StoreResult<_>>()?))
}

/// A page of the log: the scope's events (a company's: those of its
/// users), of one category if asked (`{category}.…`), older than
/// `before_id` if given, newest first.
async fn log(tx: &impl Tx, query: &AuditQuery<'_>) -> StoreResult<End<Vec<AuditEntry>>> {
    let (join, condition, id) = match query.scope {
        Scope::User(id) => ("", "a.user_id = $1", id),
        Scope::Company(id) => ("JOIN users u ON u.id = a.user_id", "u.company_id = $1", id),
    };
    let sql = format!(
        "SELECT {AUDIT_ROW}, a.id
         FROM audit_events a {join}
         WHERE {condition}
           AND (CAST($2 AS TEXT) IS NULL OR substr(a.kind, 1, length(CAST($2 AS TEXT)) + 1) = CAST($2 AS TEXT) || '.')
           AND (CAST($3 AS BIGINT) IS NULL OR a.id < CAST($3 AS BIGINT))
         ORDER BY a.id DESC LIMIT $4"
    );
    let rows = tx.query(&sql, &[id.into(), query.category.into(), query.before_id.into(), query.limit.into()]).await?;
    let entries = rows.iter().map(|r| Ok(AuditEntry { id: r.get(8)?, row: audit_row(r)? })).collect::<StoreResult<_>>()?;
    Ok(End::Commit(entries))
}

/// An [`AuditRow`] from the columns of [`AUDIT_ROW`], starting at column 0.
fn audit_row(r: &Row) -> StoreResult<AuditRow> {
    let detail: String = r.get(5)?;
    Ok(AuditRow {
        at: Millis(r.get(0)?).to_rfc3339(),
        kind: r.get(1)?,
        partner_id: r.get(2)?,
        user_id: r.get(3)?,
        session_id: r.get(4)?,
        detail: serde_json::from_str(&detail)?,
        client_ip: r.get(6)?,
        user_agent: r.get(7)?,
    })
}
