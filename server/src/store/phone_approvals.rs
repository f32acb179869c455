//! The paired phone's approvals, each operation written once for both
//! databases: the `paired-device` sessions waiting for the phone's user,
//! and one of them with its pending ceremony. A phone only ever reads its
//! own user's sessions: every statement is keyed by that user too.

use super::rows::{LinkedRows, SessionRow, SESSION_COLUMNS};
use super::sql::{End, Kind, Lookup, Tx};
use super::{run, sessions, Store, StoreResult};
use crate::clock::Millis;
use crate::model::{CeremonyKind, LinkedSession, Method, Session};

impl Store {
    /// The user's `paired-device` sessions still waiting at `now`, newest
    /// first, each with its partner's name.
    pub async fn phone_approvals(&self, user_id: &str, now: Millis) -> StoreResult<Vec<(Session, String)>> {
        let rows = run!(self, Kind::Read, |tx| async {
            let sql = format!(
                "SELECT {SESSION_COLUMNS}, (SELECT name FROM partners WHERE partners.id = partner_id) FROM sca_sessions
                 WHERE user_id = $1 AND state = 'waiting' AND method = $2 AND expires_at > $3 ORDER BY created_at DESC"
            );
            let rows = tx.query(&sql, &[user_id.into(), Method::PairedDevice.as_str().into(), now.0.into()]).await?;
            let rows = rows.iter().map(|r| Ok((SessionRow::read(r)?, r.get::<String>(11)?))).collect::<StoreResult<Vec<_>>>()?;
            Ok(End::Commit(rows))
        })?;
        rows.into_iter().map(|(row, partner)| Ok((row.parse()?, partner))).collect()
    }

    /// The user's `paired-device` session `session_id` (whatever its
    /// state), its partner's name and its pending ceremony of `ceremony`,
    /// on one snapshot; `None` if it is not one of theirs.
    pub async fn phone_approval(
        &self,
        session_id: &str,
        user_id: &str,
        ceremony: Option<CeremonyKind>,
        lookup: Lookup,
    ) -> StoreResult<Option<LinkedSession>> {
        let rows = run!(self, lookup.kind(), |tx| async {
            let sql = format!(
                "SELECT {SESSION_COLUMNS}, (SELECT name FROM partners WHERE partners.id = partner_id) FROM sca_sessions
                 WHERE id = $1 AND user_id = $2 AND method = $3"
            );
            let params = [session_id.into(), user_id.into(), Method::PairedDevice.as_str().into()];
            let Some(row) = tx.query_opt(&sql, &params).await? else { return Ok(End::Commit(None)) };
            let session = SessionRow::read(&row)?;
            let partner_name: String = row.get(11)?;
            let ceremony = sessions::pending_ceremony(tx, &session.id, ceremony).await?;
            Ok(End::Commit(Some(LinkedRows { session, partner_name, passkeys: Vec::new(), ceremony })))
        })?;
        rows.map(LinkedRows::parse).transpose()
    }
}
