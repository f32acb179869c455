//! The abuse limits, checked in the transaction that opens a session, so
//! that they hold across processes: open sessions per user (counted over a
//! partial index of waiting sessions), SMS per user and sessions per
//! partner (GCRA, one row per key).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::model::{Owner, UserAttempt};
use crate::store::{LimitKind, Limits, Rate, StoreResult};

/// `Some((limit, retry_after_ms))` if a limit refuses a new session now
/// (the first in the order of `Storage::open_session`: open sessions,
/// partner rate, SMS rate); otherwise takes its share of each rate and
/// returns `None`. Nothing is taken from any rate when one refuses.
pub(super) fn check_open(
    tx: &Connection,
    owner: &Owner,
    limits: &Limits,
    sends_sms: bool,
    now: Millis,
) -> StoreResult<Option<(LimitKind, i64)>> {
    let (open, soonest_expiry): (u32, Option<i64>) = tx
        .prepare_cached(
            "SELECT COUNT(*), MIN(expires_at) FROM sca_sessions
             WHERE user_id = ? AND state = 'waiting' AND expires_at > ?",
        )?
        .query_row(params![owner.user_id, now.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
    if open >= limits.open_sessions_per_user {
        let retry = soonest_expiry.map_or(1_000, |at| at - now.0);
        return Ok(Some((LimitKind::OpenSessions, retry)));
    }
    let partner_key = format!("partner:{}:sessions", owner.partner_id);
    let sms_key = format!("user:{}:sms", owner.user_id);
    let mut taken = Vec::with_capacity(2);
    let mut checks = vec![(LimitKind::PartnerSessions, &partner_key, limits.sessions_per_partner)];
    if sends_sms {
        checks.push((LimitKind::Sms, &sms_key, limits.sms_per_user));
    }
    for (kind, key, rate) in checks {
        match rate.admit(tat(tx, key)?, now) {
            Ok(next) => taken.push((key, next)),
            Err(retry_after_ms) => return Ok(Some((kind, retry_after_ms))),
        }
    }
    for (key, next) in taken {
        tx.prepare_cached("INSERT INTO rate_limits (key, tat) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET tat = ?2")?
            .execute(params![key, next.0])?;
    }
    Ok(None)
}

fn tat(tx: &Connection, key: &str) -> StoreResult<Option<Millis>> {
    let tat: Option<i64> = tx.prepare_cached("SELECT tat FROM rate_limits WHERE key = ?")?.query_row([key], |r| r.get(0)).optional()?;
    Ok(tat.map(Millis))
}

/// One admission from each rate, all or none (see [`crate::store::Storage::take_rates`]):
/// nothing is written unless every rate admits; a key named twice is taken
/// twice; a refusal answers the longest wait of the keys that refuse.
pub(super) fn take_rates(tx: &Connection, rates: &[(String, Rate)], now: Millis) -> StoreResult<Result<(), i64>> {
    let mut taken: Vec<(&str, Millis)> = Vec::with_capacity(rates.len());
    let mut wait: Option<i64> = None;
    for (key, rate) in rates {
        // A key taken earlier in this call starts from what that took.
        let tat = match taken.iter().rev().find(|(k, _)| k == key) {
            Some((_, next)) => Some(*next),
            None => tat(tx, key)?,
        };
        match rate.admit(tat, now) {
            Ok(next) => taken.push((key, next)),
            Err(retry_after_ms) => wait = Some(wait.map_or(retry_after_ms, |w| w.max(retry_after_ms))),
        }
    }
    if let Some(retry_after_ms) = wait {
        return Ok(Err(retry_after_ms));
    }
    for (key, next) in taken {
        tx.prepare_cached("INSERT INTO rate_limits (key, tat) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET tat = ?2")?
            .execute(params![key, next.0])?;
    }
    Ok(Ok(()))
}

pub(super) fn give_back_rates(tx: &Connection, rates: &[(String, Rate)]) -> StoreResult<()> {
    for (key, rate) in rates {
        tx.prepare_cached("UPDATE rate_limits SET tat = tat - ? WHERE key = ?")?.execute(params![rate.interval_ms, key])?;
    }
    Ok(())
}

/// One attempt at the user's codes and link passwords (see
/// `Storage::reserve_user_attempt`): one upsert, refused while blocked.
pub(super) fn reserve_user_attempt(tx: &Connection, user_id: &str, max: u32, lock_ms: i64, now: Millis) -> StoreResult<UserAttempt> {
    let reserved: Option<u32> = tx
        .prepare_cached(
            "INSERT INTO user_failures (user_id, failures, locked_until)
             VALUES (?1, 1, CASE WHEN 1 % ?2 = 0 THEN ?3 + ?4 ELSE NULL END)
             ON CONFLICT (user_id) DO UPDATE SET
                 failures = failures + 1,
                 locked_until = CASE WHEN (failures + 1) % ?2 = 0
                                     THEN ?3 + (?4 << MIN((failures + 1) / ?2 - 1, 6)) ELSE NULL END
             WHERE locked_until IS NULL OR locked_until <= ?3
             RETURNING failures",
        )?
        .query_row(params![user_id, max, now.0, lock_ms], |r| r.get(0))
        .optional()?;
    if let Some(failures) = reserved {
        return Ok(UserAttempt::Reserved { failures });
    }
    let until: i64 = tx.prepare_cached("SELECT locked_until FROM user_failures WHERE user_id = ?")?.query_row([user_id], |r| r.get(0))?;
    Ok(UserAttempt::Blocked { until: Millis(until) })
}

pub(super) fn clear_user_failures(tx: &Connection, user_id: &str) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM user_failures WHERE user_id = ?")?.execute([user_id])?;
    Ok(())
}
