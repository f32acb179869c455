//! The paired phone's approvals, each operation written once for both
//! databases: the `paired-device` sessions waiting for the phone's user,
//! and one of them with its pending ceremony. A phone only ever reads its
//! own user's sessions: every statement is keyed by that user too. And
//! the feed behind the phones' live lists: whose list may have changed.

use super::rows::{LinkedRows, SessionRow, SESSION_COLUMNS};
use super::sql::{End, Kind, Lookup, Tx};
use super::{run, sessions, Store, StoreResult};
use crate::clock::Millis;
use crate::model::{CeremonyKind, LinkedSession, Method, Session};

/// Where an instance's phone feed has read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedCursor {
    /// The last push read (`push_outbox.id`): each announces a new
    /// approval or confirmation.
    pub push_id: i64,
    /// The latest decision or unpairing read (`sca_sessions.decided_at`,
    /// `paired_phones.ended_at`).
    pub decided_at: Millis,
}

/// How far back the feed reads decisions again: a decision committed late,
/// or stamped by an instance whose clock is a little behind, is still seen.
pub const FEED_OVERLAP_MS: i64 = 2_000;

impl Store {
    /// A feed starting now: nothing before it is reported.
    pub async fn phone_feed_start(&self, now: Millis) -> StoreResult<FeedCursor> {
        run!(self, Kind::Read, |tx| async {
            let row = tx.query_one("SELECT COALESCE(MAX(id), 0) FROM push_outbox", &[]).await?;
            Ok(End::Commit(FeedCursor { push_id: row.get(0)?, decided_at: now }))
        })
    }

    /// The users whose phone's list may have changed since `cursor`: a push
    /// was written for their phone, one of their `paired-device` sessions
    /// was decided, or their phone was unpaired (those two re-read within
    /// [`FEED_OVERLAP_MS`]); and the cursor past them. Expiry is not here:
    /// each listener knows when its approvals run out.
    pub async fn phone_feed(&self, cursor: FeedCursor) -> StoreResult<(Vec<String>, FeedCursor)> {
        run!(self, Kind::Read, |tx| async {
            let pushed = tx
                .query(
                    "SELECT o.id, p.user_id FROM push_outbox o JOIN paired_phones p ON p.id = o.phone_id
                     WHERE o.id > $1 ORDER BY o.id LIMIT 1000",
                    &[cursor.push_id.into()],
                )
                .await?;
            let decided = tx
                .query(
                    // The partial index's own predicate, as written there.
                    "SELECT user_id, decided_at FROM sca_sessions
                     WHERE decided_at > $1 AND decided_at IS NOT NULL AND method = 'paired-device'",
                    &[(cursor.decided_at.0 - FEED_OVERLAP_MS).into()],
                )
                .await?;
            let unpaired = tx
                .query("SELECT user_id, ended_at FROM paired_phones WHERE ended_at > $1", &[(cursor.decided_at.0 - FEED_OVERLAP_MS).into()])
                .await?;
            let mut next = cursor;
            let mut users = Vec::with_capacity(pushed.len() + decided.len());
            for row in &pushed {
                next.push_id = next.push_id.max(row.get(0)?);
                users.push(row.get::<String>(1)?);
            }
            for row in decided.iter().chain(&unpaired) {
                users.push(row.get::<String>(0)?);
                next.decided_at = Millis(next.decided_at.0.max(row.get(1)?));
            }
            users.sort_unstable();
            users.dedup();
            Ok(End::Commit((users, next)))
        })
    }

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
