//! Trusted devices: browsers where the password alone signs in.

use rusqlite::{params, Connection};

use super::audit;
use crate::clock::Millis;
use crate::model::{AuditEvent, NewTrustedDevice, TrustedDevice};
use crate::store::StoreResult;
use crate::token::SecretHash;

pub(super) fn add(tx: &Connection, device: &NewTrustedDevice<'_>, event: &AuditEvent) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO trusted_devices (token_hash, id, user_id, name, created_at, last_used_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
    )?
    .execute(params![&device.token_hash.0[..], super::new_id(), device.user_id, device.name, device.now.0, device.expires_at.0])?;
    audit::append(tx, event)
}

pub(super) fn use_device(tx: &Connection, hash: &SecretHash, user_id: &str, now: Millis) -> StoreResult<bool> {
    Ok(tx
        .prepare_cached("UPDATE trusted_devices SET last_used_at = ?3 WHERE token_hash = ?1 AND user_id = ?2 AND expires_at > ?3")?
        .execute(params![&hash.0[..], user_id, now.0])?
        == 1)
}

pub(super) fn of_user(conn: &Connection, user_id: &str, now: Millis) -> StoreResult<Vec<TrustedDevice>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, name, created_at, last_used_at, expires_at FROM trusted_devices
         WHERE user_id = ? AND expires_at > ? ORDER BY last_used_at DESC, id",
    )?;
    let rows = statement.query_map(params![user_id, now.0], |r| {
        Ok(TrustedDevice {
            id: r.get(0)?,
            name: r.get(1)?,
            created_at: Millis(r.get(2)?),
            last_used_at: Millis(r.get(3)?),
            expires_at: Millis(r.get(4)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn revoke(tx: &Connection, user_id: &str, device_id: Option<&str>, event: &AuditEvent) -> StoreResult<u64> {
    let revoked = tx
        .prepare_cached("DELETE FROM trusted_devices WHERE user_id = ?1 AND (?2 IS NULL OR id = ?2)")?
        .execute(params![user_id, device_id])?;
    if revoked > 0 {
        audit::append(tx, event)?;
    }
    Ok(u64::try_from(revoked).unwrap_or(u64::MAX))
}
