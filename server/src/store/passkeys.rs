//! Passkeys and the WebAuthn ceremony state bound to SCA sessions.

use rusqlite::{params, Connection, OptionalExtension};
use webauthn_rs::prelude::Passkey;

use super::{is_unique_violation, Store};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::sca::{Session, State};
use crate::token::SecretHash;
use shared::error_code;

#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: String,
    pub passkey: Passkey,
}

/// A ceremony's saved state, read to verify the browser's answer. The
/// transaction that acts on a verified answer consumes it, so that each
/// challenge is answered successfully at most once.
#[derive(Debug, Clone)]
pub struct PendingCeremony {
    session_id: String,
    kind: CeremonyKind,
    /// Random per start: a newer start of the same kind replaces it.
    id: i64,
    pub state: String,
}

/// An approval link's session and what its passkey ceremonies need, read
/// on one snapshot.
#[derive(Debug)]
pub struct LinkedSession {
    pub session: Session,
    pub partner_name: String,
    /// The user's passkeys, oldest first.
    pub passkeys: Vec<StoredPasskey>,
    /// The session's pending ceremony of the kind asked for, if any.
    pub ceremony: Option<PendingCeremony>,
}

/// Which ceremony a stored state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Registration,
    Authentication,
}

impl CeremonyKind {
    fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
        }
    }
}

impl Store {
    /// The session behind an approval link with its user's passkeys and,
    /// if `ceremony` names a kind, its pending ceremony of that kind.
    pub async fn session_by_link(&self, link_hash: &SecretHash, ceremony: Option<CeremonyKind>) -> Result<Option<LinkedSession>> {
        let found = self
            .read(|conn| {
                let Some((session, partner_name)) = Self::session_by_link_in(conn, link_hash)? else {
                    return Ok(None);
                };
                let passkeys = Self::passkey_rows(conn, &session.owner.user_id)?;
                let state = match ceremony {
                    Some(kind) => conn
                        .prepare_cached("SELECT ceremony_id, state FROM webauthn_ceremonies WHERE sca_session_id = ? AND kind = ?")?
                        .query_row(params![session.id, kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?
                        .map(|(id, state)| PendingCeremony { session_id: session.id.clone(), kind, id, state }),
                    None => None,
                };
                Ok(Some((session, partner_name, passkeys, state)))
            })
            .await?;
        // JSON is parsed after the connection is released.
        found
            .map(|(session, partner_name, rows, ceremony)| {
                Ok(LinkedSession { session, partner_name, passkeys: parse_passkeys(rows)?, ceremony })
            })
            .transpose()
    }

    pub async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<StoredPasskey>> {
        parse_passkeys(self.read(|conn| Self::passkey_rows(conn, user_id)).await?)
    }

    /// (id, passkey JSON) of the user's passkeys, oldest first.
    fn passkey_rows(conn: &Connection, user_id: &str) -> Result<Vec<(String, String)>> {
        let mut statement = conn.prepare_cached("SELECT id, passkey FROM passkeys WHERE user_id = ? ORDER BY created_at")?;
        let rows = statement.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Saves the state of a ceremony for the session, replacing any earlier
    /// unfinished one of the same kind.
    pub async fn save_ceremony(&self, session_id: &str, kind: CeremonyKind, state_json: &str, now: Millis) -> Result<()> {
        let id: i64 = rand::random();
        self.write(|tx| {
            tx.prepare_cached(
                "INSERT INTO webauthn_ceremonies (sca_session_id, kind, ceremony_id, state, created_at) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (sca_session_id, kind) DO UPDATE
                 SET ceremony_id = excluded.ceremony_id, state = excluded.state, created_at = excluded.created_at",
            )?
            .execute(params![session_id, kind.as_str(), id, state_json, now.0])?;
            Ok(())
        })
        .await
    }

    /// Drops a ceremony whose answer failed: its challenge is burnt.
    pub async fn discard_ceremony(&self, ceremony: &PendingCeremony) -> Result<()> {
        self.write(|tx| Self::consume_ceremony(tx, ceremony).map(|_| ())).await
    }

    /// Deletes exactly this ceremony state; false if it is gone (answered
    /// concurrently) or was replaced by a newer start.
    fn consume_ceremony(tx: &Connection, ceremony: &PendingCeremony) -> Result<bool> {
        let deleted = tx
            .prepare_cached("DELETE FROM webauthn_ceremonies WHERE sca_session_id = ? AND kind = ? AND ceremony_id = ?")?
            .execute(params![ceremony.session_id, ceremony.kind.as_str(), ceremony.id])?;
        Ok(deleted == 1)
    }

    /// In one transaction: consume the ceremony, enrol the user's first
    /// passkey and allow the session. Refused if the user has a passkey already (a link may enrol
    /// only the first), if the credential belongs to someone, or if the
    /// session was decided or ran out meanwhile.
    pub async fn enrol_first_passkey_and_allow(
        &self,
        ceremony: &PendingCeremony,
        user_id: &str,
        passkey: &Passkey,
        now: Millis,
    ) -> Result<()> {
        let credential_id: &[u8] = passkey.cred_id().as_ref();
        let json = serde_json::to_string(passkey)?;
        let session_id = ceremony.session_id.as_str();
        self.write(|tx| {
            if !Self::consume_ceremony(tx, ceremony)? {
                return Err(Error::ceremony_not_started());
            }
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO passkeys (id, user_id, credential_id, passkey, created_at, last_used_at)
                     SELECT ?1, ?2, ?3, ?4, ?5, ?5 WHERE NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?2)",
                )?
                .execute(params![super::new_id(), user_id, credential_id, json, now.0])
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::Conflict {
                            code: error_code::CREDENTIAL_IN_USE,
                            message: "This passkey is already registered to an account",
                        }
                    } else {
                        e.into()
                    }
                })?;
            if inserted == 0 {
                return Err(Error::passkey_exists());
            }
            if !Self::decide_in(tx, session_id, State::Allow, now)? {
                return Err(Error::approval_closed());
            }
            Ok(())
        })
        .await
    }

    /// In one transaction: consume the ceremony, persist the passkey's new
    /// counter and backup flags, and allow the session.
    pub async fn record_passkey_use_and_allow(&self, ceremony: &PendingCeremony, passkey: &StoredPasskey, now: Millis) -> Result<()> {
        let json = serde_json::to_string(&passkey.passkey)?;
        let session_id = ceremony.session_id.as_str();
        self.write(|tx| {
            if !Self::consume_ceremony(tx, ceremony)? {
                return Err(Error::ceremony_not_started());
            }
            tx.prepare_cached("UPDATE passkeys SET passkey = ?, last_used_at = ? WHERE id = ?")?
                .execute(params![json, now.0, passkey.id])?;
            if !Self::decide_in(tx, session_id, State::Allow, now)? {
                return Err(Error::approval_closed());
            }
            Ok(())
        })
        .await
    }
}

fn parse_passkeys(rows: Vec<(String, String)>) -> Result<Vec<StoredPasskey>> {
    rows.into_iter().map(|(id, json)| Ok(StoredPasskey { id, passkey: serde_json::from_str(&json)? })).collect()
}
