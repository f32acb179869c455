//! The audit log's appends, written once for both databases: each row
//! takes the next position of its chain (`crate::chain`) from
//! `chain_heads` (the head's row is the chain's turn: on PostgreSQL the
//! update locks it until the commit), stores its hash and its MAC under
//! the transaction's chain key, and moves the head.

use super::rows::AuditColumns;
use super::sql::Tx;
use super::{StoreError, StoreResult};
use crate::chain::{self, Chain};
use crate::model::AuditEvent;

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
    tx.execute(
        "INSERT INTO audit_events (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent, seq, chain_hash, chain_mac)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
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
        ],
    )
    .await?;
    tx.execute("UPDATE chain_heads SET hash = $1 WHERE chain = $2", &[link.hash[..].into(), Chain::AuditEvents.table().into()]).await?;
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
