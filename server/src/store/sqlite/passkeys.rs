//! Passkeys and the WebAuthn ceremony state bound to SCA sessions.

use rusqlite::{params, Connection, OptionalExtension};

use super::sessions::{session_columns, session_row};
use super::{audit, is_unique_violation, sessions};
use webauthn_rs::prelude::Passkey;

use crate::clock::Millis;
use crate::model::{AuditEvent, CeremonyKind, PendingCeremony, RegistryEntry, State};
use crate::store::rows::{LinkedRows, PasskeyRow};
use crate::store::{Approved, Enrolment, PasskeyUse, StoreResult};
use crate::token::SecretHash;

pub(super) fn linked_rows(conn: &Connection, link_hash: &SecretHash, kind: Option<CeremonyKind>) -> StoreResult<Option<LinkedRows>> {
    const SQL: &str = concat!(
        "SELECT ",
        session_columns!(),
        ", (SELECT name FROM partners WHERE partners.id = partner_id) FROM sca_sessions WHERE link_hash = ?"
    );
    let found = conn
        .prepare_cached(SQL)?
        .query_row([&link_hash.0[..]], |r| Ok((session_row(r)?, r.get::<_, String>(11)?, r.get::<_, String>(0)?, r.get::<_, String>(2)?)))
        .optional()?;
    let Some((session, partner_name, session_id, user_id)) = found else {
        return Ok(None);
    };
    let passkeys = rows_of_user(conn, &user_id)?;
    let ceremony = match kind {
        Some(kind) => conn
            .prepare_cached("SELECT ceremony_id, state FROM webauthn_ceremonies WHERE sca_session_id = ? AND kind = ?")?
            .query_row(params![session_id, kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .map(|(id, state)| (kind, id, state)),
        None => None,
    };
    Ok(Some(LinkedRows { session, partner_name, passkeys, ceremony }))
}

/// The user's passkeys, oldest first.
pub(super) fn rows_of_user(conn: &Connection, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
    let mut statement = conn.prepare_cached("SELECT id, passkey, sign_count FROM passkeys WHERE user_id = ? ORDER BY created_at")?;
    let rows = statement.query_map([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(super) fn save_ceremony(
    tx: &Connection,
    session_id: &str,
    kind: CeremonyKind,
    id: i64,
    state: &str,
    now: crate::clock::Millis,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO webauthn_ceremonies (sca_session_id, kind, ceremony_id, state, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (sca_session_id, kind) DO UPDATE
         SET ceremony_id = excluded.ceremony_id, state = excluded.state, created_at = excluded.created_at",
    )?
    .execute(params![session_id, kind.as_str(), id, state, now.0])?;
    Ok(())
}

/// Deletes exactly this ceremony state; false if it is gone (answered
/// concurrently) or was replaced by a newer start.
pub(super) fn consume_ceremony(tx: &Connection, ceremony: &PendingCeremony) -> StoreResult<bool> {
    let deleted = tx
        .prepare_cached("DELETE FROM webauthn_ceremonies WHERE sca_session_id = ? AND kind = ? AND ceremony_id = ?")?
        .execute(params![ceremony.session_id, ceremony.kind.as_str(), ceremony.id])?;
    Ok(deleted == 1)
}

/// Runs `steps` in a nested savepoint kept only if they approve: a refusal
/// changes nothing.
fn all_or_nothing(tx: &Connection, steps: impl FnOnce() -> StoreResult<Approved>) -> StoreResult<Approved> {
    tx.prepare_cached("SAVEPOINT attempt")?.execute([])?;
    let outcome = steps();
    if !matches!(outcome, Ok(Approved::Yes)) {
        tx.prepare_cached("ROLLBACK TO attempt")?.execute([])?;
    }
    tx.prepare_cached("RELEASE attempt")?.execute([])?;
    outcome
}

/// Enrols the first passkey through the ceremony's session, which stays
/// waiting (a registration signs nothing of the approval).
pub(super) fn enrol_first(
    tx: &Connection,
    ceremony: &PendingCeremony,
    enrolment: &Enrolment<'_>,
    passkey_json: &str,
    event: &AuditEvent,
) -> StoreResult<Approved> {
    all_or_nothing(tx, || {
        if !consume_ceremony(tx, ceremony)? {
            return Ok(Approved::CeremonyGone);
        }
        // Only through a session that still waits (writers are serialised:
        // nothing decides it before the commit).
        let open = tx
            .prepare_cached("SELECT 1 FROM sca_sessions WHERE id = ?1 AND state = 'waiting' AND expires_at > ?2")?
            .query_row(params![ceremony.session_id, enrolment.now.0], |_| Ok(()))
            .optional()?;
        if open.is_none() {
            return Ok(Approved::SessionClosed);
        }
        // The first passkey only: a compare-and-set on the user's count.
        let first = tx
            .prepare_cached("UPDATE users SET passkey_count = passkey_count + 1 WHERE id = ? AND passkey_count = 0")?
            .execute([enrolment.user_id])?;
        if first == 0 {
            return Ok(Approved::PasskeyExists);
        }
        let credential_id: &[u8] = enrolment.passkey.cred_id().as_ref();
        let inserted = tx
            .prepare_cached(
                "INSERT INTO passkeys (id, user_id, credential_id, passkey, sign_count, created_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![super::new_id(), enrolment.user_id, credential_id, passkey_json, enrolment.sign_count, enrolment.now.0]);
        match inserted {
            Err(e) if is_unique_violation(&e) => return Ok(Approved::CredentialInUse),
            other => other?,
        };
        register(tx, enrolment.user_id, enrolment.passkey, enrolment.attestation, enrolment.now)?;
        if let Some(notice) = enrolment.notice {
            super::sms::insert(tx, notice)?;
        }
        audit::append(tx, event)?;
        Ok(Approved::Yes)
    })
}

pub(super) fn use_and_allow(
    tx: &Connection,
    ceremony: &PendingCeremony,
    used: &PasskeyUse<'_>,
    passkey_json: &str,
    event: &AuditEvent,
) -> StoreResult<Approved> {
    all_or_nothing(tx, || {
        if !consume_ceremony(tx, ceremony)? {
            return Ok(Approved::CeremonyGone);
        }
        // The counter only moves forward; both zero: an authenticator
        // that keeps no counter.
        let moved = tx
            .prepare_cached(
                "UPDATE passkeys SET passkey = ?1, sign_count = ?2, last_used_at = ?3
                 WHERE id = ?4 AND (sign_count < ?2 OR (?2 = 0 AND sign_count = 0))",
            )?
            .execute(params![passkey_json, used.new_sign_count, used.now.0, used.passkey.id])?;
        if moved == 0 {
            return Ok(Approved::CounterNotAdvanced);
        }
        // Allow the session, keep the evidence, log it.
        if !sessions::decide(tx, &ceremony.session_id, State::Allow, used.now)? {
            return Ok(Approved::SessionClosed);
        }
        if let Some(evidence) = used.evidence {
            audit::keep_evidence(tx, &ceremony.session_id, evidence, used.now)?;
        }
        audit::append(tx, event)?;
        Ok(Approved::Yes)
    })
}

pub(super) fn reserve_attempt(tx: &Connection, session_id: &str, max: u32) -> StoreResult<bool> {
    let reserved = tx
        .prepare_cached("UPDATE sca_sessions SET password_attempts = password_attempts + 1 WHERE id = ? AND password_attempts < ?")?
        .execute(params![session_id, max])?;
    Ok(reserved == 1)
}

pub(super) fn refund_attempt(tx: &Connection, session_id: &str) -> StoreResult<()> {
    tx.prepare_cached("UPDATE sca_sessions SET password_attempts = password_attempts - 1 WHERE id = ? AND password_attempts > 0")?
        .execute([session_id])?;
    Ok(())
}

pub(super) fn attempts_left(conn: &Connection, session_id: &str, max: u32) -> StoreResult<u32> {
    let made: Option<u32> =
        conn.prepare_cached("SELECT password_attempts FROM sca_sessions WHERE id = ?")?.query_row([session_id], |r| r.get(0)).optional()?;
    Ok(max.saturating_sub(made.unwrap_or(max)))
}

/// Appends a passkey bound to `user_id` to the credential registry.
pub(super) fn register(tx: &Connection, user_id: &str, passkey: &Passkey, attestation: Option<&str>, now: Millis) -> StoreResult<()> {
    let public_key = serde_json::to_string(passkey.get_public_key())?;
    let credential_id: &[u8] = passkey.cred_id().as_ref();
    tx.prepare_cached(
        "INSERT INTO credential_registry (user_id, credential_id, public_key, attestation_object, event, at)
         VALUES (?1, ?2, ?3, ?4, 'added', ?5)",
    )?
    .execute(params![user_id, credential_id, public_key, attestation, now.0])?;
    Ok(())
}

/// Appends the removal of a credential of `user_id` to the registry.
pub(super) fn register_removal(tx: &Connection, user_id: &str, credential_id: &[u8], now: Millis) -> StoreResult<()> {
    tx.prepare_cached("INSERT INTO credential_registry (user_id, credential_id, event, at) VALUES (?1, ?2, 'removed', ?3)")?
        .execute(params![user_id, credential_id, now.0])?;
    Ok(())
}

pub(super) fn registry_of(conn: &Connection, credential_id: &[u8]) -> StoreResult<Vec<RegistryEntry>> {
    let mut statement =
        conn.prepare_cached("SELECT user_id, public_key, event, at FROM credential_registry WHERE credential_id = ? ORDER BY id")?;
    let rows = statement.query_map([credential_id], |r| {
        Ok(RegistryEntry { user_id: r.get(0)?, public_key: r.get(1)?, added: r.get::<_, String>(2)? == "added", at: Millis(r.get(3)?) })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
