//! Trusted browsers: where the password alone signs in (for 90 days,
//! never for a payment), each operation written once for both databases.

use super::sql::{End, Kind, Tx};
use super::{audit, run, Store, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, NewTrustedDevice, TrustedDevice};
use crate::token::SecretHash;

impl Store {
    /// Trusts a browser (its cookie's hash) until `expires_at`, logged.
    pub async fn add_trusted_device(&self, device: NewTrustedDevice<'_>, audit: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Durable, |tx| add(tx, &device, audit))
    }

    /// Whether the browser is one the user trusts, unexpired; marks the use.
    pub async fn use_trusted_device(&self, token_hash: &SecretHash, user_id: &str, now: Millis) -> StoreResult<bool> {
        // A use lost to a power cut only shows an older "last used".
        run!(self, Kind::Relaxed, |tx| use_device(tx, token_hash, user_id, now))
    }

    /// The user's unexpired trusted devices, most recently used first.
    pub async fn trusted_devices(&self, user_id: &str, now: Millis) -> StoreResult<Vec<TrustedDevice>> {
        run!(self, Kind::Read, |tx| of_user(tx, user_id, now))
    }

    /// Revokes one of the user's trusted devices (`Some(id)`) or all of
    /// them, logged; how many went.
    pub async fn revoke_trusted_devices(&self, user_id: &str, device_id: Option<&str>, audit: &AuditEvent) -> StoreResult<u64> {
        run!(self, Kind::Durable, |tx| revoke(tx, user_id, device_id, audit))
    }
}

async fn add(tx: &impl Tx, device: &NewTrustedDevice<'_>, event: &AuditEvent) -> StoreResult<End<()>> {
    let id = uuid::Uuid::now_v7().to_string();
    tx.execute(
        "INSERT INTO trusted_devices (token_hash, id, user_id, name, created_at, last_used_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
        &[
            device.token_hash.0[..].into(),
            id.as_str().into(),
            device.user_id.into(),
            device.name.into(),
            device.now.0.into(),
            device.expires_at.0.into(),
        ],
    )
    .await?;
    audit::append(tx, event, None).await?;
    Ok(End::Commit(()))
}

async fn use_device(tx: &impl Tx, hash: &SecretHash, user_id: &str, now: Millis) -> StoreResult<End<bool>> {
    let used = tx
        .execute(
            "UPDATE trusted_devices SET last_used_at = $3 WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
            &[hash.0[..].into(), user_id.into(), now.0.into()],
        )
        .await?;
    Ok(End::Commit(used == 1))
}

async fn of_user(tx: &impl Tx, user_id: &str, now: Millis) -> StoreResult<End<Vec<TrustedDevice>>> {
    let rows = tx
        .query(
            "SELECT id, name, created_at, last_used_at, expires_at FROM trusted_devices
             WHERE user_id = $1 AND expires_at > $2 ORDER BY last_used_at DESC, id",
            &[user_id.into(), now.0.into()],
        )
        .await?;
    let devices = rows
        .iter()
        .map(|r| {
            Ok(TrustedDevice {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: Millis(r.get(2)?),
                last_used_at: Millis(r.get(3)?),
                expires_at: Millis(r.get(4)?),
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(devices))
}

async fn revoke(tx: &impl Tx, user_id: &str, device_id: Option<&str>, event: &AuditEvent) -> StoreResult<End<u64>> {
    let revoked = tx
        .execute(
            "DELETE FROM trusted_devices WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id = $2)",
            &[user_id.into(), device_id.into()],
        )
        .await?;
    if revoked > 0 {
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(revoked))
}
