//! The account area's browser sessions, keyed by their secret's hash, and
//! their step-up codes; each operation written once for both databases.

use super::sql::{End, Kind, Row, Tx};
use super::{audit, outbox, run, StepUpCode, Store, StoreError, StoreResult};
use crate::binding::Proofs;
use crate::clock::Millis;
use crate::model::{AuditEvent, BrowserSession, Liveness, NewBrowserSession, Stage, StepUpAttempt};
use crate::token::SecretHash;

impl Store {
    /// Stores a browser session (and deletes the one it `replaces`), with
    /// its audit event, in one transaction.
    pub async fn open_browser_session(&self, new: NewBrowserSession<'_>, audit: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Durable, |tx| open(tx, &new, audit))
    }

    /// The browser session if it is alive; `touch` records this use as
    /// its latest (a compare-and-set on liveness: a session that ran out is
    /// never brought back).
    pub async fn browser_session(&self, token_hash: &SecretHash, alive: Liveness, touch: bool) -> StoreResult<Option<BrowserSession>> {
        if touch {
            // A use lost to a power cut only makes the session end sooner.
            run!(self, Kind::Relaxed, |tx| touch_alive(tx, token_hash, alive))
        } else {
            run!(self, Kind::Read, |tx| find_alive(tx, token_hash, alive))
        }
    }

    /// Ends one browser session, with its audit event; false if it had ended.
    pub async fn end_browser_session(&self, token_hash: &SecretHash, audit: &AuditEvent) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| end(tx, token_hash, audit))
    }

    /// Ends every browser session and every trusted browser of the user,
    /// with one audit event; returns how many sessions ended.
    pub async fn end_browser_sessions_of_user(&self, user_id: &str, audit: &AuditEvent) -> StoreResult<u64> {
        run!(self, Kind::Durable, |tx| end_all_of_user(tx, user_id, audit))
    }

    /// Records proofs of the session (each given time replaces the
    /// stored one; a possession or phone proof also spends its step-up
    /// code), with the audit event; false if the session is gone.
    pub async fn record_proofs(&self, session: &SecretHash, proofs: Proofs, audit: &AuditEvent) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| record_proofs(tx, session, proofs, audit))
    }

    /// Stores a step-up code for the session (replacing one, failures
    /// reset) with its SMS and audit event, unless one was sent less than
    /// `resend_after_ms` ago: then `Err` is the wait in milliseconds and
    /// nothing is stored or sent.
    pub async fn save_step_up_code(&self, code: StepUpCode<'_>) -> StoreResult<Result<(), i64>> {
        run!(self, Kind::Durable, |tx| save_step_up_code(tx, &code))
    }

    /// Reserves one attempt at the session's step-up code, sent at or
    /// after `not_before`, by a compare-and-set below `max` failures.
    pub async fn reserve_step_up_attempt(&self, session: &SecretHash, max: u32, not_before: Millis) -> StoreResult<StepUpAttempt> {
        // Durable: an attempt forgotten by a power cut would be a free guess.
        run!(self, Kind::Durable, |tx| reserve_step_up_attempt(tx, session, max, not_before))
    }
}

async fn open(tx: &impl Tx, new: &NewBrowserSession<'_>, event: &AuditEvent) -> StoreResult<End<()>> {
    if let Some(old) = &new.replaces {
        tx.execute("DELETE FROM browser_sessions WHERE token_hash = $1", &[old.0[..].into()]).await?;
    }
    let at = |t: Option<Millis>| t.map(|t| t.0);
    tx.execute(
        "INSERT INTO browser_sessions (token_hash, user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at)
         VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
        &[
            new.token_hash.0[..].into(),
            new.user_id.into(),
            new.stage.as_str().into(),
            new.now.0.into(),
            at(new.proofs.knowledge_at).into(),
            at(new.proofs.possession_at).into(),
            at(new.proofs.phone_at).into(),
        ],
    )
    .await?;
    audit::append(tx, event, None).await?;
    Ok(End::Commit(()))
}

/// The session if alive, its use recorded in the same statement.
async fn touch_alive(tx: &impl Tx, hash: &SecretHash, alive: Liveness) -> StoreResult<End<Option<BrowserSession>>> {
    let row = tx
        .query_opt(
            "UPDATE browser_sessions SET last_seen_at = $4
             WHERE token_hash = $1 AND last_seen_at > $2 AND created_at > $3
             RETURNING user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at",
            &[hash.0[..].into(), alive.idle_cutoff().into(), alive.age_cutoff().into(), alive.now.0.into()],
        )
        .await?;
    Ok(End::Commit(row.as_ref().map(parse).transpose()?))
}

async fn find_alive(tx: &impl Tx, hash: &SecretHash, alive: Liveness) -> StoreResult<End<Option<BrowserSession>>> {
    let row = tx
        .query_opt(
            "SELECT user_id, stage, created_at, last_seen_at, knowledge_at, possession_at, phone_at FROM browser_sessions
             WHERE token_hash = $1 AND last_seen_at > $2 AND created_at > $3",
            &[hash.0[..].into(), alive.idle_cutoff().into(), alive.age_cutoff().into()],
        )
        .await?;
    Ok(End::Commit(row.as_ref().map(parse).transpose()?))
}

/// A row of `user_id, stage, created_at, last_seen_at, knowledge_at,
/// possession_at, phone_at`.
fn parse(r: &Row) -> StoreResult<BrowserSession> {
    let stage: String = r.get(1)?;
    let stage = Stage::parse(&stage).ok_or_else(|| StoreError::Corrupt(format!("unknown browser session stage {stage:?}")))?;
    let at = |i: usize| r.get::<Option<i64>>(i).map(|t| t.map(Millis));
    let proofs = Proofs { knowledge_at: at(4)?, possession_at: at(5)?, phone_at: at(6)? };
    Ok(BrowserSession { user_id: r.get(0)?, stage, created_at: Millis(r.get(2)?), last_seen_at: Millis(r.get(3)?), proofs })
}

async fn end(tx: &impl Tx, hash: &SecretHash, event: &AuditEvent) -> StoreResult<End<bool>> {
    let ended = tx.execute("DELETE FROM browser_sessions WHERE token_hash = $1", &[hash.0[..].into()]).await? > 0;
    if ended {
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(ended))
}

async fn end_all_of_user(tx: &impl Tx, user_id: &str, event: &AuditEvent) -> StoreResult<End<u64>> {
    let ended = tx.execute("DELETE FROM browser_sessions WHERE user_id = $1", &[user_id.into()]).await?;
    tx.execute("DELETE FROM trusted_browsers WHERE user_id = $1", &[user_id.into()]).await?;
    audit::append(tx, event, None).await?;
    Ok(End::Commit(ended))
}

async fn record_proofs(tx: &impl Tx, hash: &SecretHash, proofs: Proofs, event: &AuditEvent) -> StoreResult<End<bool>> {
    let at = |t: Option<Millis>| t.map(|t| t.0);
    let recorded = tx
        .execute(
            "UPDATE browser_sessions SET knowledge_at = COALESCE($2, knowledge_at), possession_at = COALESCE($3, possession_at),
                 phone_at = COALESCE($4, phone_at),
                 step_up_mac = CASE WHEN CAST($3 AS BIGINT) IS NULL AND CAST($4 AS BIGINT) IS NULL THEN step_up_mac END
             WHERE token_hash = $1",
            &[hash.0[..].into(), at(proofs.knowledge_at).into(), at(proofs.possession_at).into(), at(proofs.phone_at).into()],
        )
        .await?
        == 1;
    if recorded {
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(recorded))
}

async fn save_step_up_code(tx: &impl Tx, code: &StepUpCode<'_>) -> StoreResult<End<Result<(), i64>>> {
    let saved = tx
        .execute(
            "UPDATE browser_sessions SET step_up_mac = $2, step_up_sent_at = $3, step_up_failures = 0
             WHERE token_hash = $1 AND (step_up_sent_at IS NULL OR step_up_sent_at <= CAST($3 AS BIGINT) - CAST($4 AS BIGINT))",
            &[code.session.0[..].into(), code.mac.0[..].into(), code.now.0.into(), code.resend_after_ms.into()],
        )
        .await?
        == 1;
    if !saved {
        let row = tx.query_opt("SELECT step_up_sent_at FROM browser_sessions WHERE token_hash = $1", &[code.session.0[..].into()]).await?;
        let sent_at: Option<i64> = row.map(|r| r.get(0)).transpose()?.flatten();
        return Ok(End::Commit(Err(sent_at.map_or(code.resend_after_ms, |at| at + code.resend_after_ms - code.now.0).max(1))));
    }
    outbox::insert(tx, code.sms).await?;
    audit::append(tx, code.audit, None).await?;
    Ok(End::Commit(Ok(())))
}

async fn reserve_step_up_attempt(tx: &impl Tx, hash: &SecretHash, max: u32, not_before: Millis) -> StoreResult<End<StepUpAttempt>> {
    let row = tx
        .query_opt(
            "UPDATE browser_sessions SET step_up_failures = step_up_failures + 1
             WHERE token_hash = $1 AND step_up_mac IS NOT NULL AND step_up_sent_at >= $2 AND step_up_failures < $3
             RETURNING step_up_mac, step_up_failures",
            &[hash.0[..].into(), not_before.0.into(), max.into()],
        )
        .await?;
    let Some(row) = row else {
        return Ok(End::Commit(StepUpAttempt::Missing));
    };
    let mac: Vec<u8> = row.get(0)?;
    let mac = <[u8; 32]>::try_from(mac.as_slice()).map_err(|_| StoreError::Corrupt("a step-up code's MAC is not 32 bytes".into()))?;
    Ok(End::Commit(StepUpAttempt::Reserved { mac: SecretHash(mac), failures: row.get(1)? }))
}
