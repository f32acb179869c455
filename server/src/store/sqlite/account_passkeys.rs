//! Passkeys in the account area: the ceremonies bound to a browser session
//! or, for a sign-in with a passkey alone, to a browser's cookie (each
//! taken once), a passkey used at sign-in, a passkey added.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, is_unique_violation, sms};
use crate::clock::Millis;
use crate::model::{AuditEvent, CeremonyKind};
use crate::store::{FactorNotice, NewPasskey, PasskeyUse, StoreResult};
use crate::token::SecretHash;

pub(super) fn save_ceremony(tx: &Connection, session: &SecretHash, kind: CeremonyKind, state: &str, now: Millis) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO account_ceremonies (session_hash, kind, state, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (session_hash, kind) DO UPDATE SET state = ?3, created_at = ?4",
    )?
    .execute(params![&session.0[..], kind.as_str(), state, now.0])?;
    Ok(())
}

pub(super) fn take_ceremony(tx: &Connection, session: &SecretHash, kind: CeremonyKind, not_before: Millis) -> StoreResult<Option<String>> {
    let state: Option<(String, i64)> = tx
        .prepare_cached("DELETE FROM account_ceremonies WHERE session_hash = ? AND kind = ? RETURNING state, created_at")?
        .query_row(params![&session.0[..], kind.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(state.filter(|(_, at)| *at >= not_before.0).map(|(state, _)| state))
}

pub(super) fn save_sign_in_ceremony(tx: &Connection, id_hash: &SecretHash, state: &str, now: Millis) -> StoreResult<()> {
    tx.prepare_cached("INSERT INTO sign_in_ceremonies (id_hash, state, created_at) VALUES (?1, ?2, ?3)")?.execute(params![
        &id_hash.0[..],
        state,
        now.0
    ])?;
    Ok(())
}

pub(super) fn take_sign_in_ceremony(tx: &Connection, id_hash: &SecretHash, not_before: Millis) -> StoreResult<Option<String>> {
    let state: Option<(String, i64)> = tx
        .prepare_cached("DELETE FROM sign_in_ceremonies WHERE id_hash = ? RETURNING state, created_at")?
        .query_row([&id_hash.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(state.filter(|(_, at)| *at >= not_before.0).map(|(state, _)| state))
}

pub(super) fn record_use(tx: &Connection, used: &PasskeyUse<'_>, passkey_json: &str, event: &AuditEvent) -> StoreResult<bool> {
    // The counter only moves forward; both zero: an authenticator that keeps none.
    let moved = tx
        .prepare_cached(
            "UPDATE passkeys SET passkey = ?1, sign_count = ?2, last_used_at = ?3
             WHERE id = ?4 AND (sign_count < ?2 OR (?2 = 0 AND sign_count = 0))",
        )?
        .execute(params![passkey_json, used.new_sign_count, used.now.0, used.passkey.id])?
        == 1;
    if moved {
        audit::append(tx, event)?;
    }
    Ok(moved)
}

pub(super) fn add(tx: &Connection, new: &NewPasskey<'_>, passkey_json: &str, notice: &FactorNotice<'_>) -> StoreResult<bool> {
    let credential_id: &[u8] = new.passkey.cred_id().as_ref();
    let inserted = tx
        .prepare_cached(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, sign_count, created_at, name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![super::new_id(), new.user_id, credential_id, passkey_json, new.sign_count, new.now.0, new.name]);
    match inserted {
        Err(e) if is_unique_violation(&e) => return Ok(false),
        other => other?,
    };
    tx.prepare_cached("UPDATE users SET passkey_count = passkey_count + 1 WHERE id = ?")?.execute([new.user_id])?;
    super::passkeys::register(tx, new.user_id, new.passkey, new.attestation, new.now)?;
    sms::insert(tx, notice.sms)?;
    audit::append(tx, notice.audit)?;
    Ok(true)
}
