//! The approval evidence: what the user saw and signed, kept on its own
//! chain (`crate::chain`) in the transaction that decides the session.

use super::audit::place;
use super::rows::EvidenceColumns;
use super::sql::Tx;
use super::StoreResult;
use crate::chain::Chain;
use crate::clock::Millis;

/// Appends the evidence of `session_id`'s decision.
pub(super) async fn keep(tx: &impl Tx, session_id: &str, evidence: &str, now: Millis) -> StoreResult<()> {
    let columns = EvidenceColumns { session_id, at: now.0, evidence };
    let place = place(tx, Chain::ApprovalEvidence, &columns.chained()).await?;
    tx.execute(
        "INSERT INTO approval_evidence (id, session_id, at, evidence, seq, chain_hash, chain_mac, row_mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            place.id.into(),
            session_id.into(),
            now.0.into(),
            evidence.into(),
            place.seq.into(),
            place.hash.as_ref().map(|h| &h[..]).into(),
            place.mac.as_ref().map(|m| &m[..]).into(),
            place.row_mac.as_ref().map(|m| &m[..]).into(),
        ],
    )
    .await?;
    Ok(())
}
