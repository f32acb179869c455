//! Retention: one batch per table and call, each a plain DELETE of rows
//! past their time, so that two processes purging at once only share the
//! work. (The chained log and evidence: `audit::purge_chain`.)

use rusqlite::{params, Connection};

use crate::store::{PurgeBefore, Purged, StoreResult};

pub(super) fn purge(tx: &Connection, before: &PurgeBefore) -> StoreResult<Purged> {
    let limit = before.batch;
    // Sessions that ran out unused, with their ceremonies (cascade); a
    // consumed session is the record of its transfer and stays.
    let sessions = tx
        .prepare_cached(
            "DELETE FROM sca_sessions WHERE id IN (
                 SELECT id FROM sca_sessions WHERE expires_at < ?1 AND state != 'consumed' LIMIT ?2)",
        )?
        .execute(params![before.operational.0, limit])?;
    // Starts never answered, of sessions that stay.
    tx.prepare_cached(
        "DELETE FROM webauthn_ceremonies WHERE (sca_session_id, kind) IN (
             SELECT sca_session_id, kind FROM webauthn_ceremonies WHERE created_at < ?1 LIMIT ?2)",
    )?
    .execute(params![before.operational.0, limit])?;
    let browser_sessions = tx
        .prepare_cached(
            "DELETE FROM browser_sessions WHERE token_hash IN (
                 SELECT token_hash FROM browser_sessions WHERE last_seen_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before.operational.0, limit])?;
    let browser_sessions = browser_sessions
        + tx.prepare_cached(
            "DELETE FROM trusted_devices WHERE token_hash IN (
                 SELECT token_hash FROM trusted_devices WHERE expires_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before.operational.0, limit])?;
    tx.prepare_cached(
        "DELETE FROM sign_in_ceremonies WHERE id_hash IN (
             SELECT id_hash FROM sign_in_ceremonies WHERE created_at < ?1 LIMIT ?2)",
    )?
    .execute(params![before.ceremonies.0, limit])?;
    let sms = tx
        .prepare_cached("DELETE FROM sms_outbox WHERE id IN (SELECT id FROM sms_outbox WHERE sent_at < ?1 LIMIT ?2)")?
        .execute(params![before.operational.0, limit])?;
    tx.prepare_cached("DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits WHERE tat < ?1 LIMIT ?2)")?
        .execute(params![before.operational.0, limit])?;
    let idempotency_keys = tx
        .prepare_cached(
            "DELETE FROM idempotency_keys WHERE (partner_id, key) IN (
                 SELECT partner_id, key FROM idempotency_keys WHERE created_at < ?1 LIMIT ?2)",
        )?
        .execute(params![before.idempotency.0, limit])?;
    let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    Ok(Purged {
        sessions: count(sessions),
        browser_sessions: count(browser_sessions),
        sms: count(sms),
        idempotency_keys: count(idempotency_keys),
        audit_events: 0,
        evidence: 0,
    })
}
