//! The append-only audit log and the approval evidence (rows leave only
//! through the retention purge), each a hash chain (`crate::chain`),
//! written once for both databases.
//!
//! Where a row takes its position differs by design, not by dialect:
//! SQLite's one writer takes the next position from `chain_heads` at the
//! insert (the head is never contended); PostgreSQL's several writers
//! append the row waiting, with its row MAC, and a linker gives it its
//! position right after the commit ([`link`], one short transaction at a
//! time per chain on the head's row lock), so that no transaction holds
//! the head until its commit is flushed. Hashes and MACs are made under
//! the transaction's chain key, never sent to the database.
use super::rows::{AuditColumns, EvidenceColumns, AUDIT_CHAINED, EVIDENCE_CHAINED};
use super::sql::{Dialect, End, Kind, Param, Row, Tx};
use super::{
    outbox, run, Anchor, AuditEntry, AuditQuery, AuditRow, ChainRow, ChainState, Scope, Store, StoreError, StoreResult, WaitingRow,
};
use crate::chain::{self, Chain};
use crate::clock::Millis;
use crate::model::AuditEvent;
use crate::notify::sms::OutgoingSms;

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

    /// Rows of `chain` waiting for their position, by id after `after`, up
    /// to `limit`: each with its columns as its row MAC covers them.
    pub async fn waiting_rows(&self, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<WaitingRow>> {
        run!(self, Kind::Read, |tx| async { waiting_rows(tx, chain, after, limit).await.map(End::Commit) })
    }

    /// Gives every row waiting in either chain its position (see
    /// [`link`]); the number linked. Lost to a power cut, a link is only
    /// made again: the rows wait, committed, with their row MACs.
    pub async fn link_chains(&self) -> StoreResult<u64> {
        let mut linked = 0;
        for chain in Chain::ALL {
            loop {
                let pass = run!(self, Kind::Relaxed, |tx| link(tx, chain, LINK_BATCH))?;
                linked += pass.linked;
                if pass.read < u64::from(LINK_BATCH) {
                    break;
                }
            }
        }
        Ok(linked)
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
    let place = place(tx, Chain::AuditEvents, &columns.chained()).await?;
    tx.execute(
        "INSERT INTO audit_events (id, at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent, seq, chain_hash, chain_mac, row_mac)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            place.id.into(),
            columns.at.into(),
            columns.kind.into(),
            columns.partner_id.into(),
            columns.user_id.into(),
            columns.session_id.into(),
            columns.detail.into(),
            columns.client_ip.into(),
            columns.user_agent.into(),
            place.seq.into(),
            place.hash.as_ref().map(|h| &h[..]).into(),
            place.mac.as_ref().map(|m| &m[..]).into(),
            place.row_mac.as_ref().map(|m| &m[..]).into(),
        ],
    )
    .await?;
    Ok(())
}

/// What a new row of a chain stores besides its columns: its position,
/// hash and MAC (linked at the insert), or its id and row MAC (waiting
/// for the linker).
pub(super) struct Place {
    pub id: Option<i64>,
    pub seq: Option<i64>,
    pub hash: Option<[u8; 32]>,
    pub mac: Option<[u8; 32]>,
    pub row_mac: Option<[u8; 32]>,
}

/// Where the new row of `chain` with these columns goes (see the module's
/// head): SQLite takes the next position and moves the head now;
/// PostgreSQL takes the row's id, MACs it with the columns, and has the
/// linker called once the transaction commits.
pub(super) async fn place(tx: &impl Tx, chain: Chain, columns: &[chain::Value<'_>]) -> StoreResult<Place> {
    let key = tx.chain_key();
    let table = chain.table();
    match tx.dialect() {
        Dialect::Sqlite => {
            let head = tx.query_one("UPDATE chain_heads SET seq = seq + 1 WHERE chain = $1 RETURNING seq, hash", &[table.into()]).await?;
            let (seq, previous): (i64, Vec<u8>) = (head.get(0)?, head.get(1)?);
            let previous = chain::hash_of(&previous).ok_or_else(|| StoreError::Corrupt(format!("the head of {table} is not a hash")))?;
            let link = key.link(chain, seq, &previous, columns);
            tx.execute("UPDATE chain_heads SET hash = $1 WHERE chain = $2", &[link.hash[..].into(), table.into()]).await?;
            Ok(Place { id: None, seq: Some(seq), hash: Some(link.hash), mac: Some(link.mac), row_mac: None })
        }
        Dialect::Postgres => {
            // The identity column's sequence by its name (`{table}_id_seq`),
            // resolved once when the statement is prepared: no catalog
            // look-up per row, as `pg_get_serial_sequence` made.
            let id: i64 = tx.query_one(&format!("SELECT nextval('{table}_id_seq')"), &[]).await?.get(0)?;
            tx.link_after_commit();
            Ok(Place { id: Some(id), seq: None, hash: None, mac: None, row_mac: Some(key.row_mac(chain, id, columns)) })
        }
    }
}

/// Rows a linker reads at once.
const LINK_BATCH: u32 = 500;

/// What one pass of the linker did.
struct Pass {
    /// Waiting rows read (a full batch: there may be more).
    read: u64,
    linked: u64,
}

/// Gives the rows of `chain` that wait for their position (at most
/// `limit`, by id) the next positions, with their hashes and MACs, and
/// moves the head, holding the head's row (on PostgreSQL, its lock: one
/// linker at a time across instances, and no request waits on it). A row
/// whose row MAC the key did not make is left waiting, never linked:
/// verification reports it.
async fn link(tx: &impl Tx, chain: Chain, limit: u32) -> StoreResult<End<Pass>> {
    let table = chain.table();
    let head = match tx.dialect() {
        Dialect::Sqlite => tx.query_one("SELECT seq, hash FROM chain_heads WHERE chain = $1", &[table.into()]).await?,
        Dialect::Postgres => tx.query_one("SELECT seq, hash FROM chain_heads WHERE chain = $1 FOR UPDATE", &[table.into()]).await?,
    };
    let (mut seq, previous): (i64, Vec<u8>) = (head.get(0)?, head.get(1)?);
    let mut previous = chain::hash_of(&previous).ok_or_else(|| StoreError::Corrupt(format!("the head of {table} is not a hash")))?;
    let waiting = waiting_rows(tx, chain, 0, limit).await?;
    let key = tx.chain_key();
    let mut links = Vec::with_capacity(waiting.len());
    for row in &waiting {
        if !key.row_verifies(chain, row.id, &row.encoded, &row.row_mac) {
            tracing::warn!(
                chain = table,
                id = row.id,
                "a row waits for its chain position with a row MAC this key did not make: left unlinked"
            );
            continue;
        }
        seq += 1;
        let hash = chain::hash_after(&previous, &chain::at_position(seq, &row.encoded));
        links.push(Link { id: row.id, seq, hash, mac: key.mac(chain, &hash) });
        previous = hash;
    }
    let linked = links.len() as u64;
    if set_links(tx, chain, &links).await? != linked {
        return Err(StoreError::Backend(format!("a waiting row of {table} was linked by someone else")));
    }
    if linked > 0 {
        tx.execute("UPDATE chain_heads SET seq = $1, hash = $2 WHERE chain = $3", &[seq.into(), previous[..].into(), table.into()]).await?;
    }
    Ok(End::Commit(Pass { read: waiting.len() as u64, linked }))
}

/// A waiting row's place in its chain, as the linker computed it.
struct Link {
    id: i64,
    seq: i64,
    hash: [u8; 32],
    mac: [u8; 32],
}

/// Writes the links into the waiting rows of `chain`; the number of rows
/// written. One statement for the pass, the links as arrays (each
/// statement is a round trip and a reply: one per row made about a tenth
/// of an approval's statements).
async fn set_links(tx: &impl Tx, chain: Chain, links: &[Link]) -> StoreResult<u64> {
    if links.is_empty() {
        return Ok(0);
    }
    let table = chain.table();
    // Table names from the model's enum, never from input.
    match tx.dialect() {
        Dialect::Postgres => {
            let ids: Vec<i64> = links.iter().map(|link| link.id).collect();
            let seqs: Vec<i64> = links.iter().map(|link| link.seq).collect();
            let hashes: Vec<&[u8]> = links.iter().map(|link| &link.hash[..]).collect();
            let macs: Vec<&[u8]> = links.iter().map(|link| &link.mac[..]).collect();
            let sql = format!(
                "UPDATE {table} AS t SET seq = v.seq, chain_hash = v.hash, chain_mac = v.mac
                 FROM unnest($1::BIGINT[], $2::BIGINT[], $3::BYTEA[], $4::BYTEA[]) AS v (id, seq, hash, mac)
                 WHERE t.id = v.id AND t.seq IS NULL"
            );
            tx.execute(&sql, &[Param::Ints(&ids), Param::Ints(&seqs), Param::BytesArray(&hashes), Param::BytesArray(&macs)]).await
        }
        // SQLite links each row at its insert (`place`): no row of it
        // waits with a row MAC, so none reaches the linker.
        Dialect::Sqlite => {
            Err(StoreError::Backend(format!("a row of {table} waits for its position on SQLite, which links at the insert")))
        }
    }
}

/// Up to `limit` rows of `chain` waiting for their position, by id after
/// `after`.
async fn waiting_rows(tx: &impl Tx, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<WaitingRow>> {
    let table = chain.table();
    let columns = match chain {
        Chain::AuditEvents => AUDIT_CHAINED,
        Chain::ApprovalEvidence => EVIDENCE_CHAINED,
    };
    // Table and column names from the model's enum, never from input.
    let rows = tx
        .query(
            &format!(
                "SELECT id, row_mac, {columns} FROM {table} WHERE seq IS NULL AND row_mac IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
            ),
            &[after.into(), limit.into()],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let (_, encoded) = encoded(chain, r, 2)?;
            Ok(WaitingRow { id: r.get(0)?, row_mac: r.get(1)?, encoded })
        })
        .collect()
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
                "SELECT COUNT(*) FILTER (WHERE row_mac IS NULL),
                        COUNT(*) FILTER (WHERE row_mac IS NULL AND id > (SELECT MIN(id) FROM {table} WHERE seq IS NOT NULL)),
                        COUNT(*) FILTER (WHERE row_mac IS NOT NULL)
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
        waiting: u64::try_from(unchained.get::<i64>(2)?).unwrap_or(0),
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
            let (at, encoded) = encoded(chain, r, 4)?;
            Ok(ChainRow {
                id: r.get(0)?,
                seq,
                at,
                content: chain::at_position(seq, &encoded),
                hash: r.get::<Option<Vec<u8>>>(2)?.unwrap_or_default(),
                mac: r.get::<Option<Vec<u8>>>(3)?.unwrap_or_default(),
            })
        })
        .collect()
}

/// The chained columns of a row read back from column `from` on: their
/// `at`, and their encoding ([`chain::encode`]).
fn encoded(chain: Chain, r: &Row, from: usize) -> StoreResult<(i64, Vec<u8>)> {
    Ok(match chain {
        Chain::AuditEvents => {
            let (kind, detail): (String, String) = (r.get(from + 1)?, r.get(from + 5)?);
            let text = |i: usize| r.get::<Option<String>>(from + i);
            let (partner_id, user_id, session_id, client_ip, user_agent) = (text(2)?, text(3)?, text(4)?, text(6)?, text(7)?);
            let columns = AuditColumns {
                at: r.get(from)?,
                kind: &kind,
                partner_id: partner_id.as_deref(),
                user_id: user_id.as_deref(),
                session_id: session_id.as_deref(),
                detail: &detail,
                client_ip: client_ip.as_deref(),
                user_agent: user_agent.as_deref(),
            };
            (columns.at, chain::encode(&columns.chained()))
        }
        Chain::ApprovalEvidence => {
            let (session_id, at, evidence): (String, i64, String) = (r.get(from)?, r.get(from + 1)?, r.get(from + 2)?);
            (at, chain::encode(&EvidenceColumns { session_id: &session_id, at, evidence: &evidence }.chained()))
        }
    })
}

/// The retention purge of one chain: the unchained rows of before the
/// chain, by id (never a row waiting for its position); then the oldest
/// run of chained rows that is older than `cutoff` and verifies
/// (`chain::purgeable`, MACs checked under the transaction's key), whole,
/// leaving an anchor MACed under the key (the position and hash
/// verification starts from).
async fn purge_chain(tx: &impl Tx, chain: Chain, cutoff: Millis, limit: u32, now: Millis) -> StoreResult<End<u64>> {
    let table = chain.table();
    // Table names from the model's enum, never from input.
    let legacy = tx
        .execute(
            &format!(
                "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE seq IS NULL AND row_mac IS NULL ORDER BY id LIMIT $2) AND at < $1"
            ),
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
