//! The abuse limits, checked in the transaction that opens a session, so
//! that they hold across processes: open sessions per user (counted over a
//! partial index of waiting sessions), SMS per user and sessions per
//! partner (GCRA, one row per key).

use rusqlite::{params, Connection, OptionalExtension};

use crate::clock::Millis;
use crate::model::Owner;
use crate::store::{LimitKind, Limits, StoreResult};

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
