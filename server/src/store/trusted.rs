//! Trusted browsers: where the password alone signs in (for 90 days,
//! never for a payment), each operation written once for both databases.

use super::sql::{End, Kind, Tx};
use super::{audit, run, Store, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, NewTrustedBrowser, TrustedBrowser};
use crate::token::SecretHash;

impl Store {
    /// Trusts a browser (its cookie's hash) until `expires_at`, logged.
    pub async fn add_trusted_browser(&self, browser: NewTrustedBrowser<'_>, audit: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Durable, |tx| add(tx, &browser, audit))
    }

    /// Whether the browser is one the user trusts, unexpired; marks the use.
    pub async fn use_trusted_browser(&self, token_hash: &SecretHash, user_id: &str, now: Millis) -> StoreResult<bool> {
        // A use lost to a power cut only shows an older "last used".
        run!(self, Kind::Relaxed, |tx| use_browser(tx, token_hash, user_id, now))
    }

    /// The user's unexpired trusted browsers, most recently used first.
    pub async fn trusted_browsers(&self, user_id: &str, now: Millis) -> StoreResult<Vec<TrustedBrowser>> {
        run!(self, Kind::Read, |tx| of_user(tx, user_id, now))
    }

    /// Revokes one of the user's trusted browsers (`Some(id)`) or all of
    /// them, logged; how many went.
    pub async fn revoke_trusted_browsers(&self, user_id: &str, browser_id: Option<&str>, audit: &AuditEvent) -> StoreResult<u64> {
        run!(self, Kind::Durable, |tx| revoke(tx, user_id, browser_id, audit))
    }
}

async fn add(tx: &impl Tx, browser: &NewTrustedBrowser<'_>, event: &AuditEvent) -> StoreResult<End<()>> {
    let id = uuid::Uuid::now_v7().to_string();
    tx.execute(
        "INSERT INTO trusted_browsers (token_hash, id, user_id, name, created_at, last_used_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $5, $6)",
        &[
            browser.token_hash.0[..].into(),
            id.as_str().into(),
            browser.user_id.into(),
            browser.name.into(),
            browser.now.0.into(),
            browser.expires_at.0.into(),
        ],
    )
    .await?;
    audit::append(tx, event, None).await?;
    Ok(End::Commit(()))
}

async fn use_browser(tx: &impl Tx, hash: &SecretHash, user_id: &str, now: Millis) -> StoreResult<End<bool>> {
    let used = tx
        .execute(
            "UPDATE trusted_browsers SET last_used_at = $3 WHERE token_hash = $1 AND user_id = $2 AND expires_at > $3",
            &[hash.0[..].into(), user_id.into(), now.0.into()],
        )
        .await?;
    Ok(End::Commit(used == 1))
}

async fn of_user(tx: &impl Tx, user_id: &str, now: Millis) -> StoreResult<End<Vec<TrustedBrowser>>> {
    let rows = tx
        .query(
            "SELECT id, name, created_at, last_used_at, expires_at FROM trusted_browsers
             WHERE user_id = $1 AND expires_at > $2 ORDER BY last_used_at DESC, id",
            &[user_id.into(), now.0.into()],
        )
        .await?;
    let browsers = rows
        .iter()
        .map(|r| {
            Ok(TrustedBrowser {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: Millis(r.get(2)?),
                last_used_at: Millis(r.get(3)?),
                expires_at: Millis(r.get(4)?),
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(browsers))
}

async fn revoke(tx: &impl Tx, user_id: &str, browser_id: Option<&str>, event: &AuditEvent) -> StoreResult<End<u64>> {
    let revoked = tx
        .execute(
            "DELETE FROM trusted_browsers WHERE user_id = $1 AND (CAST($2 AS TEXT) IS NULL OR id = $2)",
            &[user_id.into(), browser_id.into()],
        )
        .await?;
    if revoked > 0 {
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(revoked))
}
