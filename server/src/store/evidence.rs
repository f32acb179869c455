//! The approval evidence: what the user saw and signed, kept on its own
//! chain (`crate::chain`) in the transaction that decides the session.

use super::audit::advance;
use super::rows::EvidenceColumns;
use super::sql::{Dialect, Tx};
use super::StoreResult;
use crate::chain::Chain;
use crate::clock::Millis;

/// Appends the evidence of `session_id`'s decision.
pub(super) async fn keep(tx: &impl Tx, session_id: &str, evidence: &str, now: Millis) -> StoreResult<()> {
    let columns = EvidenceColumns { session_id, at: now.0, evidence };
    let (seq, previous) = advance(tx, Chain::ApprovalEvidence).await?;
    let link = tx.chain_key().link(Chain::ApprovalEvidence, seq, &previous, &columns.chained());
    let params = [
        session_id.into(),
        now.0.into(),
        evidence.into(),
        seq.into(),
        link.hash[..].into(),
        link.mac[..].into(),
        Chain::ApprovalEvidence.table().into(),
    ];
    match tx.dialect() {
        // One round trip while the head's row stays locked (see `audit::append`).
        Dialect::Postgres => {
            tx.execute(
                "WITH kept AS (
                     INSERT INTO approval_evidence (session_id, at, evidence, seq, chain_hash, chain_mac) VALUES ($1, $2, $3, $4, $5, $6))
                 UPDATE chain_heads SET hash = $5 WHERE chain = $7",
                &params,
            )
            .await?;
        }
        Dialect::Sqlite => {
            tx.execute(
                "INSERT INTO approval_evidence (session_id, at, evidence, seq, chain_hash, chain_mac) VALUES ($1, $2, $3, $4, $5, $6)",
                &params[..6],
            )
            .await?;
            tx.execute("UPDATE chain_heads SET hash = $1 WHERE chain = $2", &[params[4], params[6]]).await?;
        }
    }
    Ok(())
}
