//! Authenticator apps (TOTP) and recovery codes, each operation written
//! once for both databases; every rule a single statement (a
//! compare-and-set), so that it holds across processes and instances.

use super::sql::{Dialect, End, Kind, Param, Tx};
use super::{audit, outbox, run, Store, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, TotpAcceptance, TotpAttempt, TotpCounter, TotpFactor};
use crate::notify::sms::OutgoingSms;
use crate::token::SecretHash;

/// Where a sealed authenticator-app key is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedSlot {
    /// The user's app (confirmed or pending).
    Current,
    /// The replacement waiting for its first code.
    Next,
}

/// A sealed authenticator-app key, for re-sealing under a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedTotpKey {
    pub user_id: String,
    pub slot: SealedSlot,
    pub sealed: String,
}

impl Store {
    /// Every sealed authenticator-app key (`passgate secrets reseal`).
    pub async fn sealed_totp_keys(&self) -> StoreResult<Vec<SealedTotpKey>> {
        run!(self, Kind::Read, |tx| async {
            let rows = tx.query("SELECT user_id, sealed_key, next_key FROM totp_factors ORDER BY user_id", &[]).await?;
            let mut keys = Vec::new();
            for row in &rows {
                let user_id: String = row.get(0)?;
                keys.push(SealedTotpKey { user_id: user_id.clone(), slot: SealedSlot::Current, sealed: row.get(1)? });
                if let Some(next) = row.get::<Option<String>>(2)? {
                    keys.push(SealedTotpKey { user_id, slot: SealedSlot::Next, sealed: next });
                }
            }
            Ok(End::Commit(keys))
        })
    }

    /// Replaces `key` by `resealed` (the same secret under the current
    /// key); `false` if it changed meanwhile (a new app was set up).
    pub async fn reseal_totp_key(&self, key: &SealedTotpKey, resealed: &str) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async {
            let params: [Param; 3] = [key.user_id.as_str().into(), key.sealed.as_str().into(), resealed.into()];
            let changed = match key.slot {
                SealedSlot::Current => {
                    tx.execute("UPDATE totp_factors SET sealed_key = $3 WHERE user_id = $1 AND sealed_key = $2", &params).await?
                }
                SealedSlot::Next => {
                    tx.execute("UPDATE totp_factors SET next_key = $3 WHERE user_id = $1 AND next_key = $2", &params).await?
                }
            };
            Ok(End::Commit(changed == 1))
        })
    }

    /// Stores a new pending app, replacing a pending one; `false` (nothing
    /// stored) if the user has a confirmed app.
    pub async fn begin_totp(&self, user_id: &str, sealed_key: &str, now: Millis) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| begin(tx, user_id, sealed_key, now))
    }

    /// Stores the key of an app that replaces the user's confirmed one
    /// (and any replacement begun before); the old app works until a code
    /// of the new one is accepted ([`TotpAcceptance::replacing`]). `false`
    /// (nothing stored) if the user has no confirmed app.
    pub async fn begin_totp_replacement(&self, user_id: &str, sealed_key: &str, now: Millis) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| begin_replacement(tx, user_id, sealed_key, now))
    }

    pub async fn totp_of_user(&self, user_id: &str) -> StoreResult<Option<TotpFactor>> {
        run!(self, Kind::Read, |tx| of_user(tx, user_id))
    }

    /// Reserves one attempt on a counter of the user's app (its codes,
    /// pending, confirmed or replacing, or its recovery codes): a failure
    /// until a code is accepted. Failures add up across locks; each `max`th
    /// locks the counter for `lock_ms` doubled at each lock of the series
    /// (at most 64 times). Concurrent attempts never pass a lock.
    pub async fn reserve_totp_attempt(
        &self,
        user_id: &str,
        counter: TotpCounter,
        max: u32,
        lock_ms: i64,
        now: Millis,
    ) -> StoreResult<TotpAttempt> {
        // Durable: an attempt forgotten by a power cut would be a free guess.
        run!(self, Kind::Durable, |tx| reserve(tx, user_id, counter, max, lock_ms, now))
    }

    /// Accepts a checked code (a compare-and-set on the last accepted step
    /// and on the key it was checked against: `false` if this step, or a
    /// later one, was accepted already, or the key was replaced), clears
    /// the failures, logs it; confirming, stores the recovery codes and
    /// the SMS notice.
    pub async fn accept_totp_code(&self, acceptance: TotpAcceptance<'_>, audit: &AuditEvent) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| accept(tx, &acceptance, audit))
    }

    /// Uses a recovery code once (after a reserved attempt); clears the
    /// failures and logs it. `false` if unknown or used.
    pub async fn use_recovery_code(&self, user_id: &str, hash: &SecretHash, now: Millis, audit: &AuditEvent) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| use_recovery_code(tx, user_id, hash, now, audit))
    }

    pub async fn recovery_codes_left(&self, user_id: &str) -> StoreResult<u32> {
        run!(self, Kind::Read, |tx| async {
            let left =
                tx.query_one("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL", &[user_id.into()]).await?;
            Ok(End::Commit(left.get(0)?))
        })
    }

    /// Replaces the user's recovery codes with these (hashes), with the
    /// SMS that tells them and the audit event; `false` (nothing changed)
    /// if the user has no confirmed app. Two at once leave one set.
    pub async fn renew_recovery_codes(
        &self,
        user_id: &str,
        codes: &[SecretHash],
        notice: &OutgoingSms,
        audit: &AuditEvent,
    ) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| renew_recovery_codes(tx, user_id, codes, notice, audit))
    }
}

async fn begin(tx: &impl Tx, user_id: &str, sealed_key: &str, now: Millis) -> StoreResult<End<bool>> {
    let stored = tx
        .execute(
            "INSERT INTO totp_factors (user_id, sealed_key, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET sealed_key = $2, created_at = $3, last_step = -1, failures = 0, locked_until = NULL
             WHERE totp_factors.confirmed_at IS NULL",
            &[user_id.into(), sealed_key.into(), now.0.into()],
        )
        .await?;
    Ok(End::Commit(stored == 1))
}

async fn begin_replacement(tx: &impl Tx, user_id: &str, sealed_key: &str, now: Millis) -> StoreResult<End<bool>> {
    let stored = tx
        .execute(
            "UPDATE totp_factors SET next_key = $2, next_created_at = $3 WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            &[user_id.into(), sealed_key.into(), now.0.into()],
        )
        .await?;
    Ok(End::Commit(stored == 1))
}

async fn of_user(tx: &impl Tx, user_id: &str) -> StoreResult<End<Option<TotpFactor>>> {
    let row = tx
        .query_opt(
            "SELECT sealed_key, created_at, confirmed_at, last_used_at, locked_until, last_step, next_created_at
             FROM totp_factors WHERE user_id = $1",
            &[user_id.into()],
        )
        .await?;
    let at = |t: Option<i64>| t.map(Millis);
    let app = row
        .map(|r| {
            Ok::<_, super::StoreError>(TotpFactor {
                sealed_key: r.get(0)?,
                created_at: Millis(r.get(1)?),
                confirmed_at: at(r.get(2)?),
                last_used_at: at(r.get(3)?),
                locked_until: at(r.get(4)?),
                last_step: r.get(5)?,
                replacing_since: at(r.get(6)?),
            })
        })
        .transpose()?;
    Ok(End::Commit(app))
}

async fn reserve(tx: &impl Tx, user_id: &str, counter: TotpCounter, max: u32, lock_ms: i64, now: Millis) -> StoreResult<End<TotpAttempt>> {
    // Column names from the model's enum, never from input.
    let (failures, locked_until) = counter.columns();
    let key = counter.key_column();
    // Failures add up across locks; each `max`th locks for `lock_ms`
    // doubled at each lock of the series (`model::lock_after`).
    let doubled = match tx.dialect() {
        Dialect::Sqlite => format!("$5 << MIN(({failures} + 1) / $3 - 1, 6)"),
        Dialect::Postgres => format!("$5::BIGINT << LEAST(({failures} + 1) / $3 - 1, 6)"),
    };
    let params: [Param<'_>; 5] = [user_id.into(), counter.confirmed().into(), max.into(), now.0.into(), lock_ms.into()];
    let reserved = tx
        .query_opt(
            &format!(
                "UPDATE totp_factors SET
                     {failures} = {failures} + 1,
                     {locked_until} = CASE WHEN ({failures} + 1) % $3 = 0 THEN $4 + ({doubled}) ELSE NULL END
                 WHERE user_id = $1 AND (confirmed_at IS NOT NULL) = $2 AND {key} IS NOT NULL
                     AND ({locked_until} IS NULL OR {locked_until} <= $4)
                 RETURNING {key}, {failures}"
            ),
            &params,
        )
        .await?;
    if let Some(r) = reserved {
        return Ok(End::Commit(TotpAttempt::Reserved { sealed_key: r.get(0)?, failures: r.get(1)? }));
    }
    let locked = tx
        .query_opt(
            &format!(
                "SELECT {locked_until} FROM totp_factors WHERE user_id = $1 AND (confirmed_at IS NOT NULL) = $2 AND {key} IS NOT NULL"
            ),
            &[user_id.into(), counter.confirmed().into()],
        )
        .await?;
    Ok(End::Commit(match locked.map(|r| r.get::<Option<i64>>(0)).transpose()?.flatten() {
        Some(until) => TotpAttempt::Locked { until: Millis(until) },
        None => TotpAttempt::Absent,
    }))
}

async fn accept(tx: &impl Tx, acceptance: &TotpAcceptance<'_>, event: &AuditEvent) -> StoreResult<End<bool>> {
    // The replacing app's key takes the old one's place: the old app's
    // codes, last step and failures go with it.
    let accepted = if acceptance.replacing {
        tx.execute(
            "UPDATE totp_factors SET sealed_key = next_key, next_key = NULL, next_created_at = NULL, created_at = $3, confirmed_at = $3,
                 last_step = $2, failures = 0, locked_until = NULL, recovery_failures = 0, recovery_locked_until = NULL, last_used_at = $3
             WHERE user_id = $1 AND confirmed_at IS NOT NULL AND next_key = $4",
            &[acceptance.user_id.into(), acceptance.step.into(), acceptance.now.0.into(), acceptance.sealed_key.into()],
        )
        .await?
    } else {
        tx.execute(
            "UPDATE totp_factors SET last_step = $2, failures = 0, locked_until = NULL, recovery_failures = 0, recovery_locked_until = NULL,
                 last_used_at = $3, confirmed_at = COALESCE(confirmed_at, $3)
             WHERE user_id = $1 AND last_step < $2 AND (confirmed_at IS NOT NULL) = $4 AND sealed_key = $5",
            &[
                acceptance.user_id.into(),
                acceptance.step.into(),
                acceptance.now.0.into(),
                acceptance.confirming.is_none().into(),
                acceptance.sealed_key.into(),
            ],
        )
        .await?
    } == 1;
    if !accepted {
        return Ok(End::Commit(false));
    }
    if let Some(codes) = acceptance.confirming {
        store_recovery_codes(tx, acceptance.user_id, codes).await?;
    }
    if let Some(notice) = acceptance.notice {
        outbox::insert(tx, notice).await?;
    }
    audit::append(tx, event, None).await?;
    Ok(End::Commit(true))
}

async fn use_recovery_code(tx: &impl Tx, user_id: &str, hash: &SecretHash, now: Millis, event: &AuditEvent) -> StoreResult<End<bool>> {
    let used = tx
        .execute(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            &[now.0.into(), user_id.into(), hash.0[..].into()],
        )
        .await?
        == 1;
    if used {
        tx.execute(
            "UPDATE totp_factors SET failures = 0, locked_until = NULL, recovery_failures = 0, recovery_locked_until = NULL, last_used_at = $1
             WHERE user_id = $2",
            &[now.0.into(), user_id.into()],
        )
        .await?;
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(used))
}

async fn renew_recovery_codes(
    tx: &impl Tx,
    user_id: &str,
    codes: &[SecretHash],
    notice: &OutgoingSms,
    event: &AuditEvent,
) -> StoreResult<End<bool>> {
    // New codes, new count: guesses at the old ones are moot. The row's
    // lock orders two renewals: one set is left.
    let has_app = tx
        .execute(
            "UPDATE totp_factors SET recovery_failures = 0, recovery_locked_until = NULL WHERE user_id = $1 AND confirmed_at IS NOT NULL",
            &[user_id.into()],
        )
        .await?
        == 1;
    if !has_app {
        return Ok(End::Commit(false));
    }
    store_recovery_codes(tx, user_id, codes).await?;
    outbox::insert(tx, notice).await?;
    audit::append(tx, event, None).await?;
    Ok(End::Commit(true))
}

/// The user's recovery codes become these (hashes).
async fn store_recovery_codes(tx: &impl Tx, user_id: &str, codes: &[SecretHash]) -> StoreResult<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[user_id.into()]).await?;
    for code in codes {
        tx.execute("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)", &[user_id.into(), code.0[..].into()]).await?;
    }
    Ok(())
}
