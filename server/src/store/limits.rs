//! Rates (GCRA, one row per key: sign-ins, step-up codes) and the user's
//! failures at their codes and link passwords (PSD2 RTS art. 4(3)(b)),
//! each operation written once for both databases.

use super::sql::{Dialect, End, Kind, Param, Tx};
use super::{run, Rate, Store, StoreResult};
use crate::clock::Millis;
use crate::model::UserAttempt;

impl Store {
    /// Takes one admission from each rate, all or none (see [`take_rates`]).
    pub async fn take_rates(&self, rates: &[(String, Rate)], now: Millis) -> StoreResult<Result<(), i64>> {
        // A rate lost to a power cut lets one more attempt through: relaxed.
        run!(self, Kind::Relaxed, |tx| take_rates(tx, rates, now))
    }

    /// Gives back what [`Store::take_rates`] took (a right password).
    pub async fn give_back_rates(&self, rates: &[(String, Rate)]) -> StoreResult<()> {
        run!(self, Kind::Relaxed, |tx| give_back_rates(tx, rates))
    }

    /// Reserves one attempt at the user's one-time codes and approval-link
    /// passwords, before the check: failures add up until
    /// [`Store::clear_user_failures`]; each `max`th blocks for `lock_ms`
    /// doubled at each block of the series (at most 64 times; the rule of
    /// `model::lock_after`). Concurrent attempts never pass a block.
    pub async fn reserve_user_attempt(&self, user_id: &str, max: u32, lock_ms: i64, now: Millis) -> StoreResult<UserAttempt> {
        // Durable: an attempt forgotten by a power cut would be a free guess.
        run!(self, Kind::Durable, |tx| reserve_user_attempt(tx, user_id, max, lock_ms, now))
    }

    /// A right code or password: the user's failures start again from zero.
    pub async fn clear_user_failures(&self, user_id: &str) -> StoreResult<()> {
        // Lost to a power cut, the count only stays stricter: relaxed.
        run!(self, Kind::Relaxed, |tx| clear_user_failures(tx, user_id))
    }
}

/// One admission from each rate, all or none: the rows are taken in key
/// order (no deadlock between two takers on PostgreSQL); a key named twice
/// is taken twice; a refusal undoes what the other keys took and answers
/// the longest wait of the keys that refuse.
async fn take_rates(tx: &impl Tx, rates: &[(String, Rate)], now: Millis) -> StoreResult<End<Result<(), i64>>> {
    let mut sorted: Vec<&(String, Rate)> = rates.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut wait: Option<i64> = None;
    for (key, rate) in sorted {
        if let Err(retry_after_ms) = take(tx, key, *rate, now).await? {
            wait = Some(wait.map_or(retry_after_ms, |w| w.max(retry_after_ms)));
        }
    }
    Ok(match wait {
        Some(retry_after_ms) => End::Rollback(Err(retry_after_ms)),
        None => End::Commit(Ok(())),
    })
}

/// One admission of `rate` for `key`, or how long until one (`Err`, in
/// milliseconds): GCRA ([`Rate::admit`]) in one statement, so that a row
/// every opening of a partner shares is locked (on PostgreSQL, until the
/// end of the transaction) for one round trip rather than two. `$2` is
/// now, `$3` the interval, `$4` the burst's allowance; a refusal updates
/// nothing and reads the stored time to say how long to wait.
pub(super) async fn take(tx: &impl Tx, key: &str, rate: Rate, now: Millis) -> StoreResult<Result<(), i64>> {
    let upsert = match tx.dialect() {
        Dialect::Sqlite => {
            "INSERT INTO rate_limits AS r (key, tat) SELECT $1, $2 + $3 WHERE $3 <= $4
             ON CONFLICT (key) DO UPDATE SET tat = MAX(r.tat, $2) + $3
             WHERE MAX(r.tat, $2) + $3 - $2 <= $4
             RETURNING tat"
        }
        Dialect::Postgres => {
            "INSERT INTO rate_limits AS r (key, tat) SELECT $1, $2::BIGINT + $3::BIGINT WHERE $3::BIGINT <= $4::BIGINT
             ON CONFLICT (key) DO UPDATE SET tat = GREATEST(r.tat, $2) + $3
             WHERE GREATEST(r.tat, $2) + $3 - $2 <= $4
             RETURNING tat"
        }
    };
    let params: [Param<'_>; 4] = [key.into(), now.0.into(), rate.interval_ms.into(), rate.allowance_ms().into()];
    if tx.query_opt(upsert, &params).await?.is_some() {
        return Ok(Ok(()));
    }
    // Refused: the row, locked by the refused upsert on PostgreSQL, says
    // how long until the next admission. (Under that lock it refuses as
    // the upsert did; were it ever to admit, one interval is the safe side.)
    let tat = tx.query_opt("SELECT tat FROM rate_limits WHERE key = $1", &[key.into()]).await?;
    let tat = tat.map(|row| row.get(0)).transpose()?.map(Millis);
    Ok(Err(rate.admit(tat, now).err().unwrap_or(rate.interval_ms)))
}

async fn give_back_rates(tx: &impl Tx, rates: &[(String, Rate)]) -> StoreResult<End<()>> {
    let mut sorted: Vec<&(String, Rate)> = rates.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, rate) in sorted {
        tx.execute("UPDATE rate_limits SET tat = tat - $2 WHERE key = $1", &[key.into(), rate.interval_ms.into()]).await?;
    }
    Ok(End::Commit(()))
}

/// One upsert, refused while blocked.
async fn reserve_user_attempt(tx: &impl Tx, user_id: &str, max: u32, lock_ms: i64, now: Millis) -> StoreResult<End<UserAttempt>> {
    let upsert = match tx.dialect() {
        Dialect::Sqlite => {
            "INSERT INTO user_failures AS f (user_id, failures, locked_until)
             VALUES ($1, 1, CASE WHEN 1 % $2 = 0 THEN $3 + $4 ELSE NULL END)
             ON CONFLICT (user_id) DO UPDATE SET
                 failures = f.failures + 1,
                 locked_until = CASE WHEN (f.failures + 1) % $2 = 0
                                     THEN $3 + ($4 << MIN((f.failures + 1) / $2 - 1, 6)) ELSE NULL END
             WHERE f.locked_until IS NULL OR f.locked_until <= $3
             RETURNING failures"
        }
        Dialect::Postgres => {
            "INSERT INTO user_failures AS f (user_id, failures, locked_until)
             VALUES ($1, 1, CASE WHEN 1 % $2::INTEGER = 0 THEN $3::BIGINT + $4::BIGINT ELSE NULL END)
             ON CONFLICT (user_id) DO UPDATE SET
                 failures = f.failures + 1,
                 locked_until = CASE WHEN (f.failures + 1) % $2 = 0
                                     THEN $3 + ($4 << LEAST((f.failures + 1) / $2 - 1, 6)) ELSE NULL END
             WHERE f.locked_until IS NULL OR f.locked_until <= $3
             RETURNING failures"
        }
    };
    let params: [Param<'_>; 4] = [user_id.into(), max.into(), now.0.into(), lock_ms.into()];
    if let Some(row) = tx.query_opt(upsert, &params).await? {
        return Ok(End::Commit(UserAttempt::Reserved { failures: row.get(0)? }));
    }
    let until: i64 = tx.query_one("SELECT locked_until FROM user_failures WHERE user_id = $1", &[user_id.into()]).await?.get(0)?;
    Ok(End::Commit(UserAttempt::Blocked { until: Millis(until) }))
}

async fn clear_user_failures(tx: &impl Tx, user_id: &str) -> StoreResult<End<()>> {
    tx.execute("DELETE FROM user_failures WHERE user_id = $1", &[user_id.into()]).await?;
    Ok(End::Commit(()))
}
