//! Authenticator apps and recovery codes; every rule a single statement
//! (a compare-and-set), so that it holds across processes.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, sms};
use crate::clock::Millis;
use crate::model::{AuditEvent, TotpAcceptance, TotpAttempt, TotpCounter, TotpFactor};
use crate::sms::OutgoingSms;
use crate::store::StoreResult;
use crate::token::SecretHash;

pub(super) fn begin(tx: &Connection, user_id: &str, sealed_key: &str, now: Millis) -> StoreResult<bool> {
    let stored = tx
        .prepare_cached(
            "INSERT INTO totp_factors (user_id, sealed_key, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (user_id) DO UPDATE SET sealed_key = ?2, created_at = ?3, last_step = -1, failures = 0, locked_until = NULL
             WHERE totp_factors.confirmed_at IS NULL",
        )?
        .execute(params![user_id, sealed_key, now.0])?;
    Ok(stored == 1)
}

pub(super) fn begin_replacement(tx: &Connection, user_id: &str, sealed_key: &str, now: Millis) -> StoreResult<bool> {
    let stored = tx
        .prepare_cached("UPDATE totp_factors SET next_key = ?2, next_created_at = ?3 WHERE user_id = ?1 AND confirmed_at IS NOT NULL")?
        .execute(params![user_id, sealed_key, now.0])?;
    Ok(stored == 1)
}

pub(super) fn of_user(conn: &Connection, user_id: &str) -> StoreResult<Option<TotpFactor>> {
    let row = conn
        .prepare_cached(
            "SELECT sealed_key, created_at, confirmed_at, last_used_at, locked_until, last_step, next_created_at
             FROM totp_factors WHERE user_id = ?",
        )?
        .query_row([user_id], |r| {
            Ok(TotpFactor {
                sealed_key: r.get(0)?,
                created_at: Millis(r.get(1)?),
                confirmed_at: r.get::<_, Option<i64>>(2)?.map(Millis),
                last_used_at: r.get::<_, Option<i64>>(3)?.map(Millis),
                locked_until: r.get::<_, Option<i64>>(4)?.map(Millis),
                last_step: r.get(5)?,
                replacing_since: r.get::<_, Option<i64>>(6)?.map(Millis),
            })
        })
        .optional()?;
    Ok(row)
}

pub(super) fn reserve(
    tx: &Connection,
    user_id: &str,
    counter: TotpCounter,
    max: u32,
    lock_ms: i64,
    now: Millis,
) -> StoreResult<TotpAttempt> {
    // Column names from the model's enum, never from input.
    let (failures, locked_until) = counter.columns();
    let key = counter.key_column();
    // Failures add up across locks; each `max`th locks for `lock_ms`
    // doubled at each lock of the series (`model::lock_after`).
    let reserved = tx
        .prepare_cached(&format!(
            "UPDATE totp_factors SET
                 {failures} = {failures} + 1,
                 {locked_until} = CASE WHEN ({failures} + 1) % ?3 = 0
                                     THEN ?4 + (?5 << MIN(({failures} + 1) / ?3 - 1, 6)) ELSE NULL END
             WHERE user_id = ?1 AND (confirmed_at IS NOT NULL) = ?2 AND {key} IS NOT NULL
                 AND ({locked_until} IS NULL OR {locked_until} <= ?4)
             RETURNING {key}, {failures}"
        ))?
        .query_row(params![user_id, counter.confirmed(), max, now.0, lock_ms], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((sealed_key, failures)) = reserved {
        return Ok(TotpAttempt::Reserved { sealed_key, failures });
    }
    let locked: Option<Option<i64>> = tx
        .prepare_cached(&format!(
            "SELECT {locked_until} FROM totp_factors WHERE user_id = ? AND (confirmed_at IS NOT NULL) = ? AND {key} IS NOT NULL"
        ))?
        .query_row(params![user_id, counter.confirmed()], |r| r.get(0))
        .optional()?;
    Ok(match locked {
        Some(Some(until)) => TotpAttempt::Locked { until: Millis(until) },
        _ => TotpAttempt::Absent,
    })
}

pub(super) fn accept(tx: &Connection, acceptance: &TotpAcceptance<'_>, event: &AuditEvent) -> StoreResult<bool> {
    // The replacing app's key takes the old one's place: the old app's
    // codes, last step and failures go with it.
    let accepted = if acceptance.replacing {
        tx.prepare_cached(
            "UPDATE totp_factors SET sealed_key = next_key, next_key = NULL, next_created_at = NULL, created_at = ?3, confirmed_at = ?3,
                 last_step = ?2, failures = 0, locked_until = NULL, recovery_failures = 0, recovery_locked_until = NULL, last_used_at = ?3
             WHERE user_id = ?1 AND confirmed_at IS NOT NULL AND next_key = ?4",
        )?
        .execute(params![acceptance.user_id, acceptance.step, acceptance.now.0, acceptance.sealed_key])?
            == 1
    } else {
        tx.prepare_cached(
            "UPDATE totp_factors SET last_step = ?2, failures = 0, locked_until = NULL, recovery_failures = 0, recovery_locked_until = NULL, last_used_at = ?3,
                 confirmed_at = COALESCE(confirmed_at, ?3)
             WHERE user_id = ?1 AND last_step < ?2 AND (confirmed_at IS NOT NULL) = ?4 AND sealed_key = ?5",
        )?
        .execute(params![acceptance.user_id, acceptance.step, acceptance.now.0, acceptance.confirming.is_none(), acceptance.sealed_key])?
            == 1
    };
    if !accepted {
        return Ok(false);
    }
    if let Some(codes) = acceptance.confirming {
        store_recovery_codes(tx, acceptance.user_id, codes)?;
    }
    if let Some(notice) = acceptance.notice {
        sms::insert(tx, notice)?;
    }
    audit::append(tx, event)?;
    Ok(true)
}

pub(super) fn use_recovery_code(tx: &Connection, user_id: &str, hash: &SecretHash, now: Millis, event: &AuditEvent) -> StoreResult<bool> {
    let used = tx
        .prepare_cached("UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL")?
        .execute(params![now.0, user_id, &hash.0[..]])?
        == 1;
    if used {
        tx.prepare_cached(
            "UPDATE totp_factors SET failures = 0, locked_until = NULL, recovery_failures = 0, recovery_locked_until = NULL, last_used_at = ? WHERE user_id = ?",
        )?
        .execute(params![now.0, user_id])?;
        audit::append(tx, event)?;
    }
    Ok(used)
}

pub(super) fn recovery_codes_left(conn: &Connection, user_id: &str) -> StoreResult<u32> {
    Ok(conn
        .prepare_cached("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL")?
        .query_row([user_id], |r| r.get(0))?)
}

pub(super) fn renew_recovery_codes(
    tx: &Connection,
    user_id: &str,
    codes: &[SecretHash],
    notice: &OutgoingSms,
    event: &AuditEvent,
) -> StoreResult<bool> {
    // New codes, new count: guesses at the old ones are moot.
    let has_app = tx
        .prepare_cached(
            "UPDATE totp_factors SET recovery_failures = 0, recovery_locked_until = NULL WHERE user_id = ? AND confirmed_at IS NOT NULL",
        )?
        .execute([user_id])?
        == 1;
    if !has_app {
        return Ok(false);
    }
    store_recovery_codes(tx, user_id, codes)?;
    sms::insert(tx, notice)?;
    audit::append(tx, event)?;
    Ok(true)
}

/// The user's recovery codes become these (hashes).
fn store_recovery_codes(tx: &Connection, user_id: &str, codes: &[SecretHash]) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?")?.execute([user_id])?;
    let mut insert = tx.prepare_cached("INSERT INTO recovery_codes (user_id, code_hash) VALUES (?, ?)")?;
    for code in codes {
        insert.execute(params![user_id, &code.0[..]])?;
    }
    Ok(())
}
