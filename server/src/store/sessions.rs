//! SCA sessions: creation, look-ups by token or link hash, and the
//! compare-and-set transitions of the state machine.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::Store;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::ledger::{Action, ActionOutcome};
use crate::sca::{Fingerprint, Method, Owner, Session, State};
use crate::sms::OutgoingSms;
use crate::store::Caller;
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

/// The columns [`SessionRow::read`] reads, in its order.
macro_rules! session_columns {
    () => {
        "id, partner_id, user_id, method, action_type, fingerprint, summary, state, created_at, expires_at, decided_at"
    };
}

/// A session row as stored, before its columns are parsed.
struct SessionRow {
    id: String,
    partner_id: String,
    user_id: String,
    method: String,
    action_type: String,
    fingerprint: Vec<u8>,
    summary: String,
    state: String,
    created_at: i64,
    expires_at: i64,
    decided_at: Option<i64>,
}

impl SessionRow {
    fn read(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(SessionRow {
            id: r.get(0)?,
            partner_id: r.get(1)?,
            user_id: r.get(2)?,
            method: r.get(3)?,
            action_type: r.get(4)?,
            fingerprint: r.get(5)?,
            summary: r.get(6)?,
            state: r.get(7)?,
            created_at: r.get(8)?,
            expires_at: r.get(9)?,
            decided_at: r.get(10)?,
        })
    }

    fn parse(self) -> Result<Session> {
        let corrupt = |what: &str| Error::Internal(format!("stored SCA session has a bad {what}"));
        Ok(Session {
            id: self.id,
            owner: Owner { partner_id: self.partner_id, user_id: self.user_id },
            method: Method::parse(&self.method).ok_or_else(|| corrupt("method"))?,
            action_type: self.action_type,
            fingerprint: Fingerprint(self.fingerprint.try_into().map_err(|_| corrupt("fingerprint"))?),
            summary: serde_json::from_str(&self.summary)?,
            state: State::parse(&self.state).ok_or_else(|| corrupt("state"))?,
            created_at: Millis(self.created_at),
            expires_at: Millis(self.expires_at),
            decided_at: self.decided_at.map(Millis),
        })
    }
}

impl Store {
    /// Stores a new waiting session and, in the same transaction, the SMS
    /// that tells the user about it: either both exist or neither does.
    pub async fn create_session(&self, new: NewSession<'_>, sms: Option<&OutgoingSms>) -> Result<String> {
        let id = super::new_id();
        let summary = serde_json::to_string(&new.action.summary())?;
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO sca_sessions (id, token_hash, link_hash, partner_id, user_id, method, action_type,
                     fingerprint, summary, state, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?)",
            )?
            .execute(params![
                id,
                &new.token_hash.0[..],
                new.link_hash.as_ref().map(|h| &h.0[..]),
                new.owner.partner_id,
                new.owner.user_id,
                new.method.as_str(),
                new.action.action_type(),
                &new.fingerprint.0[..],
                summary,
                new.created_at.0,
                new.expires_at.0,
            ])?;
            if let Some(sms) = sms {
                Self::insert_sms(tx, sms)?;
            }
            Ok(())
        })
        .await?;
        Ok(id)
    }

    pub async fn session_by_token(&self, hash: &SecretHash) -> Result<Option<Session>> {
        const SQL: &str = concat!("SELECT ", session_columns!(), " FROM sca_sessions WHERE token_hash = ?");
        let row = self.read(|conn| Ok(conn.prepare_cached(SQL)?.query_row([&hash.0[..]], SessionRow::read).optional()?)).await?;
        row.map(SessionRow::parse).transpose()
    }

    /// The session behind an approval link, with the asking partner's name
    /// (read inside the caller's snapshot).
    pub(super) fn session_by_link_in(conn: &Connection, hash: &SecretHash) -> Result<Option<(Session, String)>> {
        const SQL: &str = concat!(
            "SELECT ",
            session_columns!(),
            ", (SELECT name FROM partners WHERE partners.id = partner_id) FROM sca_sessions WHERE link_hash = ?"
        );
        let row = conn
            .prepare_cached(SQL)?
            .query_row([&hash.0[..]], |r| Ok((SessionRow::read(r)?, r.get::<_, String>(11)?)))
            .optional()?;
        row.map(|(session, partner)| Ok((session.parse()?, partner))).transpose()
    }

    /// Records a poll of the owner's session (only a `mock` one if
    /// `mock_only`) and returns the session, unless the previous poll was
    /// less than `min_gap_ms` ago. `None`: unknown, not the owner's, or too
    /// soon; [`Store::session_by_token`] tells which.
    pub async fn record_poll(
        &self,
        token_hash: &SecretHash,
        owner: &Owner,
        mock_only: bool,
        now: Millis,
        min_gap_ms: i64,
    ) -> Result<Option<Session>> {
        const SQL: &str = concat!(
            "UPDATE sca_sessions SET last_polled_at = ?1
             WHERE token_hash = ?2 AND partner_id = ?3 AND user_id = ?4 AND (?5 = 0 OR method = 'mock')
               AND (last_polled_at IS NULL OR last_polled_at <= ?6 OR last_polled_at > ?1)
             RETURNING ",
            session_columns!()
        );
        let row = self
            .write(|tx| {
                // A poll time in the future (a clock step back) must not lock polling out.
                Ok(tx
                    .prepare_cached(SQL)?
                    .query_row(
                        params![now.0, &token_hash.0[..], owner.partner_id, owner.user_id, mock_only, now.0 - min_gap_ms],
                        SessionRow::read,
                    )
                    .optional()?)
            })
            .await?;
        row.map(SessionRow::parse).transpose()
    }

    /// Moves a waiting, unexpired session to `to`; false if it was not.
    pub async fn decide_session(&self, session_id: &str, to: State, now: Millis) -> Result<bool> {
        self.write(|tx| Self::decide_in(tx, session_id, to, now)).await
    }

    pub(super) fn decide_in(conn: &Connection, session_id: &str, to: State, now: Millis) -> Result<bool> {
        let changed = conn
            .prepare_cached(
                "UPDATE sca_sessions SET state = ?1, decided_at = ?2
                 WHERE id = ?3 AND state = 'waiting' AND expires_at > ?2",
            )?
            .execute(params![to.as_str(), now.0, session_id])?;
        Ok(changed == 1)
    }

    /// The replay: in one transaction, consume the session if (and only if)
    /// it is allowed, fresh, the caller's, and bound to this very request,
    /// then run the action. `None` means nothing was consumed and nothing
    /// ran; the caller reads the session to tell why.
    pub async fn consume_and_run(
        &self,
        token_hash: &SecretHash,
        caller: &Caller,
        fingerprint: &Fingerprint,
        action: &Action,
        now: Millis,
    ) -> Result<Option<ActionOutcome>> {
        self.write(|tx: &Connection| {
            let consumed: Option<String> = tx
                .prepare_cached(
                    "UPDATE sca_sessions SET state = 'consumed', consumed_at = ?1
                     WHERE token_hash = ?2 AND partner_id = ?3 AND user_id = ?4 AND fingerprint = ?5
                       AND state = 'allow' AND expires_at > ?1
                     RETURNING id",
                )?
                .query_row(
                    params![now.0, &token_hash.0[..], caller.owner.partner_id, caller.owner.user_id, &fingerprint.0[..]],
                    |r| r.get(0),
                )
                .optional()?;
            match consumed {
                None => Ok(None),
                Some(session_id) => Self::run_action(tx, &session_id, caller, action, now).map(Some),
            }
        })
        .await
    }
}
