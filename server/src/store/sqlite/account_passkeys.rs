//! Passkeys in the account area: the ceremonies bound to a browser session
//! or, for a sign-in with a passkey alone, to a browser's cookie (each
//! taken once), a passkey used at sign-in, a passkey added.

use rusqlite::{params, Connection};

use super::{audit, is_unique_violation, sms};
use crate::store::{FactorNotice, NewPasskey, StoreResult};

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
