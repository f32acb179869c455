//! SCA sessions: creation, look-ups by token or link hash, and the
//! compare-and-set transitions of the state machine.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::Store;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::{Action, ActionOutcome};
use crate::sca::{Fingerprint, Method, Owner, Session, State};
use crate::sms::OutgoingSms;
use crate::token::SecretHash;

#[derive(Debug)]
pub struct NewSession<'a> {
    pub token_hash: SecretHash,
    pub link_hash: Option<SecretHash>,
    pub owner: &'a Owner,
    pub method: Method,
    pub action: &'a Action,
    pub fingerprint: Fingerprint,
    pub created_at: Millis,
    pub expires_at: Millis,
}

const SESSION_COLUMNS: &str = "s.id, s.partner_id, s.user_id, s.method, s.action_type, s.fingerprint, s.summary, \
     s.state, s.created_at, s.expires_at, s.decided_at";

fn session_from_row(r: &SqliteRow) -> Result<Session> {
    let corrupt = |what: &str| Error::Internal(format!("stored SCA session has a bad {what}"));
    let method: String = r.try_get("method")?;
    let state: String = r.try_get("state")?;
    let fingerprint: Vec<u8> = r.try_get("fingerprint")?;
    let summary: String = r.try_get("summary")?;
    Ok(Session {
        id: r.try_get("id")?,
        owner: Owner { partner_id: r.try_get("partner_id")?, user_id: r.try_get("user_id")? },
        method: Method::parse(&method).ok_or_else(|| corrupt("method"))?,
        action_type: r.try_get("action_type")?,
        fingerprint: Fingerprint(fingerprint.try_into().map_err(|_| corrupt("fingerprint"))?),
        summary: serde_json::from_str(&summary)?,
        state: State::parse(&state).ok_or_else(|| corrupt("state"))?,
        created_at: Millis(r.try_get("created_at")?),
        expires_at: Millis(r.try_get("expires_at")?),
        decided_at: r.try_get::<Option<i64>, _>("decided_at")?.map(Millis),
    })
}

impl Store {
    /// Stores a new waiting session and, in the same transaction, the SMS
    /// that tells the user about it: either both exist or neither does.
    pub async fn create_session(&self, new: NewSession<'_>, sms: Option<&OutgoingSms>) -> Result<String> {
        let id = super::new_id();
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO sca_sessions (id, token_hash, link_hash, partner_id, user_id, method, action_type,
                 fingerprint, summary, state, created_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?)",
        )
        .bind(&id)
        .bind(&new.token_hash.0[..])
        .bind(new.link_hash.as_ref().map(|h| h.0.to_vec()))
        .bind(&new.owner.partner_id)
        .bind(&new.owner.user_id)
        .bind(new.method.as_str())
        .bind(new.action.action_type())
        .bind(&new.fingerprint.0[..])
        .bind(serde_json::to_string(&new.action.summary())?)
        .bind(new.created_at.0)
        .bind(new.expires_at.0)
        .execute(&mut *tx)
        .await?;
        if let Some(sms) = sms {
            Self::insert_sms(&mut tx, sms).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    pub async fn session_by_token(&self, hash: &SecretHash) -> Result<Option<Session>> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sca_sessions s WHERE s.token_hash = ?");
        let row = sqlx::query(&sql).bind(&hash.0[..]).fetch_optional(self.reader()).await?;
        row.as_ref().map(session_from_row).transpose()
    }

    /// The session behind an approval link, with the asking partner's name.
    pub async fn session_by_link(&self, hash: &SecretHash) -> Result<Option<(Session, String)>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS}, p.name AS partner_name FROM sca_sessions s
             JOIN partners p ON p.id = s.partner_id WHERE s.link_hash = ?"
        );
        let row = sqlx::query(&sql).bind(&hash.0[..]).fetch_optional(self.reader()).await?;
        row.map(|r| Ok((session_from_row(&r)?, r.try_get("partner_name")?))).transpose()
    }

    /// Records a poll unless the previous one was less than `min_gap_ms`
    /// ago; false means "too soon".
    pub async fn record_poll(&self, session_id: &str, now: Millis, min_gap_ms: i64) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sca_sessions SET last_polled_at = ?
             WHERE id = ? AND (last_polled_at IS NULL OR last_polled_at <= ? OR last_polled_at > ?)",
        )
        .bind(now.0)
        .bind(session_id)
        .bind(now.0 - min_gap_ms)
        // A poll time in the future (a clock step back) must not lock polling out.
        .bind(now.0)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Moves a waiting, unexpired session to `to`; false if it was not.
    pub async fn decide_session(&self, session_id: &str, to: State, now: Millis) -> Result<bool> {
        let mut tx = self.write().await?;
        let won = Self::decide_in(&mut tx, session_id, to, now).await?;
        tx.commit().await?;
        Ok(won)
    }

    pub(super) async fn decide_in(
        tx: &mut sqlx::SqliteConnection,
        session_id: &str,
        to: State,
        now: Millis,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sca_sessions SET state = ?, decided_at = ?
             WHERE id = ? AND state = 'waiting' AND expires_at > ?",
        )
        .bind(to.as_str())
        .bind(now.0)
        .bind(session_id)
        .bind(now.0)
        .execute(tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The replay: in one transaction, consume the session if (and only if)
    /// it is allowed, fresh, the caller's, and bound to this very request,
    /// then run the action. `None` means nothing was consumed and nothing
    /// ran; the caller reads the session to tell why.
    pub async fn consume_and_run(
        &self,
        token_hash: &SecretHash,
        caller: &crate::store::Caller,
        fingerprint: &Fingerprint,
        action: &Action,
        now: Millis,
    ) -> Result<Option<ActionOutcome>> {
        let mut tx = self.write().await?;
        let consumed: Option<String> = sqlx::query_scalar(
            "UPDATE sca_sessions SET state = 'consumed', consumed_at = ?
             WHERE token_hash = ? AND partner_id = ? AND user_id = ? AND fingerprint = ?
               AND state = 'allow' AND expires_at > ?
             RETURNING id",
        )
        .bind(now.0)
        .bind(&token_hash.0[..])
        .bind(&caller.owner.partner_id)
        .bind(&caller.owner.user_id)
        .bind(&fingerprint.0[..])
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(session_id) = consumed else {
            return Ok(None);
        };
        let outcome = Self::run_action(&mut tx, &session_id, caller, action, now).await?;
        tx.commit().await?;
        Ok(Some(outcome))
    }
}
