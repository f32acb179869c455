//! Retention, written once for both databases: one batch per table and
//! call, each a plain DELETE of rows past their time, so that two
//! processes purging at once only share the work. (The chained log and
//! evidence: [`Store::purge_chain`].)

use super::sql::{End, Kind, Tx};
use super::{run, PurgeBefore, Purged, Store, StoreResult};

impl Store {
    /// Deletes one batch of what is past its retention; safe to run from
    /// several processes at once. Relaxed: a purge lost to a power cut
    /// only runs again.
    pub async fn purge(&self, before: PurgeBefore) -> StoreResult<Purged> {
        run!(self, Kind::Relaxed, |tx| purge(tx, &before))
    }
}

async fn purge(tx: &impl Tx, before: &PurgeBefore) -> StoreResult<End<Purged>> {
    let operational = before.operational.0;
    let limit = before.batch;
    // Sessions that ran out unused, with their ceremonies (cascade); a
    // consumed session is the record of its transfer and stays. The state
    // is written as the partial index `sca_sessions_unconsumed_by_expiry`
    // declares it, so that both planners use that index.
    let sessions = tx
        .execute(
            "DELETE FROM sca_sessions WHERE id IN (
                 SELECT id FROM sca_sessions WHERE expires_at < $1 AND state <> 'consumed' LIMIT $2)",
            &[operational.into(), limit.into()],
        )
        .await?;
    // Starts never answered, of sessions that stay.
    tx.execute(
        "DELETE FROM webauthn_ceremonies WHERE (sca_session_id, kind) IN (
             SELECT sca_session_id, kind FROM webauthn_ceremonies WHERE created_at < $1 LIMIT $2)",
        &[operational.into(), limit.into()],
    )
    .await?;
    let browser_sessions = tx
        .execute(
            "DELETE FROM browser_sessions WHERE token_hash IN (
                 SELECT token_hash FROM browser_sessions WHERE last_seen_at < $1 LIMIT $2)",
            &[operational.into(), limit.into()],
        )
        .await?;
    let trusted_browsers = tx
        .execute(
            "DELETE FROM trusted_browsers WHERE token_hash IN (
                 SELECT token_hash FROM trusted_browsers WHERE expires_at < $1 LIMIT $2)",
            &[operational.into(), limit.into()],
        )
        .await?;
    tx.execute(
        "DELETE FROM sign_in_ceremonies WHERE id_hash IN (
             SELECT id_hash FROM sign_in_ceremonies WHERE created_at < $1 LIMIT $2)",
        &[before.ceremonies.0.into(), limit.into()],
    )
    .await?;
    let sms = tx
        .execute(
            "DELETE FROM sms_outbox WHERE id IN (SELECT id FROM sms_outbox WHERE sent_at < $1 LIMIT $2)",
            &[operational.into(), limit.into()],
        )
        .await?;
    tx.execute(
        "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits WHERE tat < $1 LIMIT $2)",
        &[operational.into(), limit.into()],
    )
    .await?;
    let idempotency_keys = tx
        .execute(
            "DELETE FROM idempotency_keys WHERE (partner_id, key) IN (
                 SELECT partner_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
            &[before.idempotency.0.into(), limit.into()],
        )
        .await?;
    Ok(End::Commit(Purged {
        sessions,
        browser_sessions: browser_sessions + trusted_browsers,
        sms,
        idempotency_keys,
        audit_events: 0,
        evidence: 0,
    }))
}
