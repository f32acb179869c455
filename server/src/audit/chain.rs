//! `passgate audit verify`: walks each chained table (`crate::chain`) from
//! its genesis, or from the anchor the last purge left, to its head, and
//! names the first row where the chain breaks: a row missing from its
//! place, a row whose content no longer hashes to what it stored, a MAC
//! that the deployment's key did not make, an anchor it did not make,
//! rows outside the chain written after it began, or a row waiting for
//! its position (PostgreSQL links after the commit) whose row MAC the key
//! did not make.

use serde::Serialize;

use crate::chain::{self, Chain, ChainKey, GENESIS};
use crate::error::Result;
use crate::store::{ChainState, Store};

/// Rows read per query.
const PAGE: u32 = 1_000;

/// One chain's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub chain: &'static str,
    /// Where verification started: 0 (the genesis) or the anchor's position.
    pub from_seq: i64,
    /// Rows verified, in order.
    pub verified: u64,
    /// The head: its position and hash (hex). Keep it elsewhere: rows cut
    /// off after it, with the head, cannot be told by the chain alone.
    pub head_seq: i64,
    pub head_hash: String,
    /// Rows written before the chain existed (unverifiable, and said so).
    pub unchained: u64,
    /// Rows appended after the walk's head, waiting for the linker: each
    /// verified by its row MAC, not yet by its position.
    pub waiting: u64,
    /// The first break, if any.
    pub broken: Option<Break>,
}

impl ChainReport {
    pub fn holds(&self) -> bool {
        self.broken.is_none()
    }
}

/// Where and why a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Break {
    /// The position where the chain breaks.
    pub seq: i64,
    /// The row's id there, if a row is there.
    pub id: Option<i64>,
    pub reason: &'static str,
}

/// Verifies every chain.
pub async fn verify_all(store: &Store, key: &ChainKey) -> Result<Vec<ChainReport>> {
    let mut reports = Vec::with_capacity(Chain::ALL.len());
    for chain in Chain::ALL {
        reports.push(verify(store, key, chain).await?);
    }
    Ok(reports)
}

/// Verifies one chain, up to the head as it stood when the walk began.
pub async fn verify(store: &Store, key: &ChainKey, chain: Chain) -> Result<ChainReport> {
    let state = store.chain_state(chain).await?;
    let mut report = ChainReport {
        chain: chain.table(),
        from_seq: 0,
        verified: 0,
        head_seq: state.head_seq,
        head_hash: hex(&state.head_hash),
        unchained: state.unchained,
        waiting: 0,
        broken: None,
    };
    report.broken = walk(store, key, chain, &state, &mut report).await?;
    if report.broken.is_none() {
        report.broken = check_waiting(store, key, chain, &state, &mut report).await?;
    }
    Ok(report)
}

/// The rows waiting for their position: each must carry a row MAC the
/// key made over its id and columns.
async fn check_waiting(store: &Store, key: &ChainKey, chain: Chain, state: &ChainState, report: &mut ChainReport) -> Result<Option<Break>> {
    let mut after = 0;
    loop {
        let rows = store.waiting_rows(chain, after, PAGE).await?;
        for row in &rows {
            if !key.row_verifies(chain, row.id, &row.encoded, &row.row_mac) {
                let reason = "a row waiting for its position was not written with this deployment's key";
                return Ok(Some(Break { seq: state.head_seq + 1, id: Some(row.id), reason }));
            }
            report.waiting += 1;
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE as usize => after = last.id,
            _ => return Ok(None),
        }
    }
}

async fn walk(store: &Store, key: &ChainKey, chain: Chain, state: &ChainState, report: &mut ChainReport) -> Result<Option<Break>> {
    let (mut seq, mut previous) = match &state.anchor {
        None => (0, GENESIS.to_vec()),
        Some(anchor) => {
            if !key.verifies(chain, &chain::anchor_digest(anchor.seq, &anchor.hash), &anchor.mac) {
                return Ok(Some(Break { seq: anchor.seq, id: None, reason: "the purge anchor was not made with this deployment's key" }));
            }
            (anchor.seq, anchor.hash.clone())
        }
    };
    report.from_seq = seq;
    if state.unchained_after_start > 0 {
        return Ok(Some(Break { seq, id: None, reason: "rows without a chain position were written after the chain began" }));
    }
    'pages: loop {
        let rows = store.chain_rows(chain, seq, PAGE).await?;
        let full = rows.len() == PAGE as usize;
        for row in rows {
            if row.seq > state.head_seq {
                break 'pages;
            }
            if row.seq != seq + 1 {
                return Ok(Some(Break { seq: seq + 1, id: None, reason: "a row is missing from its place" }));
            }
            if chain::hash_after(&previous, &row.content) != row.hash.as_slice() {
                return Ok(Some(Break { seq: row.seq, id: Some(row.id), reason: "the row was changed or moved" }));
            }
            if !key.verifies(chain, &row.hash, &row.mac) {
                return Ok(Some(Break { seq: row.seq, id: Some(row.id), reason: "the row's MAC was not made with this deployment's key" }));
            }
            report.verified += 1;
            seq = row.seq;
            previous = row.hash;
        }
        if !full {
            break;
        }
    }
    if seq != state.head_seq {
        return Ok(Some(Break { seq: seq + 1, id: None, reason: "rows up to the head are missing" }));
    }
    if previous != state.head_hash {
        return Ok(Some(Break { seq, id: None, reason: "the head does not match the newest row" }));
    }
    Ok(None)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
