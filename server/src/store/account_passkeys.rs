//! Passkeys in the account area: the WebAuthn ceremonies of a browser
//! session and of a sign-in with a passkey alone (each taken once), and a
//! passkey's use at sign-in; each operation written once for both
//! databases.

use super::sql::{End, Kind, Tx};
use super::{audit, run, PasskeyUse, Store, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, CeremonyKind};
use crate::token::SecretHash;

impl Store {
    /// Saves a WebAuthn ceremony of the browser session, replacing one of
    /// the same kind.
    pub async fn save_account_ceremony(&self, session: &SecretHash, kind: CeremonyKind, state: &str, now: Millis) -> StoreResult<()> {
        // A ceremony lost to a power cut is started again: relaxed.
        run!(self, Kind::Relaxed, |tx| save_account_ceremony(tx, session, kind, state, now))
    }

    /// Takes (deletes) the session's ceremony of this kind, if started at
    /// or after `not_before`: each challenge answers once.
    pub async fn take_account_ceremony(&self, session: &SecretHash, kind: CeremonyKind, not_before: Millis) -> StoreResult<Option<String>> {
        // Durable: a taken ceremony must not come back after a power cut.
        run!(self, Kind::Durable, |tx| take_account_ceremony(tx, session, kind, not_before))
    }

    /// Saves the ceremony of a sign-in with a passkey alone, under the hash
    /// of the secret its browser keeps.
    pub async fn save_sign_in_ceremony(&self, id_hash: &SecretHash, state: &str, now: Millis) -> StoreResult<()> {
        run!(self, Kind::Relaxed, |tx| save_sign_in_ceremony(tx, id_hash, state, now))
    }

    /// Takes (deletes) that ceremony, if started at or after `not_before`.
    pub async fn take_sign_in_ceremony(&self, id_hash: &SecretHash, not_before: Millis) -> StoreResult<Option<String>> {
        run!(self, Kind::Durable, |tx| take_sign_in_ceremony(tx, id_hash, not_before))
    }

    /// Records a passkey's use at sign-in: its counter moves forward
    /// (compare-and-set) with its backup flags, logged; false if it did not.
    pub async fn record_passkey_sign_in(&self, used: PasskeyUse<'_>, audit: &AuditEvent) -> StoreResult<bool> {
        let json = serde_json::to_string(&used.passkey.passkey)?;
        run!(self, Kind::Durable, |tx| record_use(tx, &used, &json, audit))
    }
}

async fn save_account_ceremony(tx: &impl Tx, session: &SecretHash, kind: CeremonyKind, state: &str, now: Millis) -> StoreResult<End<()>> {
    tx.execute(
        "INSERT INTO account_ceremonies (session_hash, kind, state, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (session_hash, kind) DO UPDATE SET state = $3, created_at = $4",
        &[session.0[..].into(), kind.as_str().into(), state.into(), now.0.into()],
    )
    .await?;
    Ok(End::Commit(()))
}

async fn take_account_ceremony(
    tx: &impl Tx,
    session: &SecretHash,
    kind: CeremonyKind,
    not_before: Millis,
) -> StoreResult<End<Option<String>>> {
    let row = tx
        .query_opt(
            "DELETE FROM account_ceremonies WHERE session_hash = $1 AND kind = $2 RETURNING state, created_at",
            &[session.0[..].into(), kind.as_str().into()],
        )
        .await?;
    started_since(row, not_before)
}

async fn save_sign_in_ceremony(tx: &impl Tx, id_hash: &SecretHash, state: &str, now: Millis) -> StoreResult<End<()>> {
    tx.execute(
        "INSERT INTO sign_in_ceremonies (id_hash, state, created_at) VALUES ($1, $2, $3)",
        &[id_hash.0[..].into(), state.into(), now.0.into()],
    )
    .await?;
    Ok(End::Commit(()))
}

async fn take_sign_in_ceremony(tx: &impl Tx, id_hash: &SecretHash, not_before: Millis) -> StoreResult<End<Option<String>>> {
    let row =
        tx.query_opt("DELETE FROM sign_in_ceremonies WHERE id_hash = $1 RETURNING state, created_at", &[id_hash.0[..].into()]).await?;
    started_since(row, not_before)
}

/// A taken ceremony's state (`state, created_at`), if it started at or
/// after `not_before` (an older one is gone all the same).
fn started_since(row: Option<super::sql::Row>, not_before: Millis) -> StoreResult<End<Option<String>>> {
    let Some(row) = row else {
        return Ok(End::Commit(None));
    };
    let started: i64 = row.get(1)?;
    Ok(End::Commit(if started >= not_before.0 { Some(row.get(0)?) } else { None }))
}

async fn record_use(tx: &impl Tx, used: &PasskeyUse<'_>, passkey_json: &str, event: &AuditEvent) -> StoreResult<End<bool>> {
    // The counter only moves forward; both zero: an authenticator that keeps none.
    let moved = tx
        .execute(
            "UPDATE passkeys SET passkey = $1, sign_count = $2, last_used_at = $3
             WHERE id = $4 AND (sign_count < $2 OR ($2 = 0 AND sign_count = 0))",
            &[passkey_json.into(), used.new_sign_count.into(), used.now.0.into(), used.passkey.id.as_str().into()],
        )
        .await?
        == 1;
    if moved {
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(moved))
}
