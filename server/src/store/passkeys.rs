//! Passkeys and the WebAuthn ceremony state bound to SCA sessions.

use sqlx::Row;
use webauthn_rs::prelude::Passkey;

use super::{is_unique_violation, Store};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::sca::State;
use shared::error_code;

#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: String,
    pub passkey: Passkey,
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
    pub async fn passkeys_of_user(&self, user_id: &str) -> Result<Vec<StoredPasskey>> {
        let rows = sqlx::query("SELECT id, passkey FROM passkeys WHERE user_id = ? ORDER BY created_at")
            .bind(user_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get("passkey")?;
                Ok(StoredPasskey { id: r.try_get("id")?, passkey: serde_json::from_str(&json)? })
            })
            .collect()
    }

    pub async fn user_has_passkey(&self, user_id: &str) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?)")
            .bind(user_id)
            .fetch_one(self.reader())
            .await?)
    }

    /// Saves the state of a ceremony for the session, replacing any earlier
    /// unfinished one of the same kind.
    pub async fn save_ceremony(&self, session_id: &str, kind: CeremonyKind, state_json: &str, now: Millis) -> Result<()> {
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (sca_session_id, kind, state, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (sca_session_id, kind) DO UPDATE SET state = excluded.state, created_at = excluded.created_at",
        )
        .bind(session_id)
        .bind(kind.as_str())
        .bind(state_json)
        .bind(now.0)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Takes (reads and deletes) the ceremony state: each challenge is
    /// answered at most once.
    pub async fn take_ceremony(&self, session_id: &str, kind: CeremonyKind) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "DELETE FROM webauthn_ceremonies WHERE sca_session_id = ? AND kind = ? RETURNING state",
        )
        .bind(session_id)
        .bind(kind.as_str())
        .fetch_optional(self.writer())
        .await?)
    }

    /// In one transaction: enrol the user's first passkey and allow the
    /// session. Refused if the user has a passkey already (a link may enrol
    /// only the first), if the credential belongs to someone, or if the
    /// session was decided or ran out meanwhile.
    pub async fn enrol_first_passkey_and_allow(
        &self,
        session_id: &str,
        user_id: &str,
        passkey: &Passkey,
        now: Millis,
    ) -> Result<()> {
        let credential_id: &[u8] = passkey.cred_id().as_ref();
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, created_at, last_used_at)
             SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM passkeys WHERE user_id = ?)",
        )
        .bind(super::new_id())
        .bind(user_id)
        .bind(credential_id)
        .bind(serde_json::to_string(passkey)?)
        .bind(now.0)
        .bind(now.0)
        .bind(user_id)
        .execute(&mut *tx)
        .await
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
        if inserted.rows_affected() == 0 {
            return Err(Error::passkey_exists());
        }
        if !Self::decide_in(&mut tx, session_id, State::Allow, now).await? {
            return Err(Error::approval_closed());
        }
        tx.commit().await?;
        Ok(())
    }

    /// In one transaction: persist the passkey's new counter and backup
    /// flags after an authentication, and allow the session.
    pub async fn record_passkey_use_and_allow(
        &self,
        session_id: &str,
        passkey: &StoredPasskey,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE passkeys SET passkey = ?, last_used_at = ? WHERE id = ?")
            .bind(serde_json::to_string(&passkey.passkey)?)
            .bind(now.0)
            .bind(&passkey.id)
            .execute(&mut *tx)
            .await?;
        if !Self::decide_in(&mut tx, session_id, State::Allow, now).await? {
            return Err(Error::approval_closed());
        }
        tx.commit().await?;
        Ok(())
    }
}

