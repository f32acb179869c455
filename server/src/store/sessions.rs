//! SCA sessions, each operation written once for both databases: opening
//! one within the abuse limits, the look-ups by token and by link, the
//! partner's polls, the compare-and-set transitions of the state machine,
//! and the approval link's password attempts.
//!
//! States and methods are bound from the model's enums, but for
//! `state = 'waiting'` where the partial index of waiting sessions serves
//! the query (a bound value would not use it); the model's enum spells it
//! so (`the_literal_is_the_models_name`).

use super::rows::{LinkedRows, OtpRow, SessionRow, SESSION_COLUMNS};
use super::sql::{Dialect, End, Kind, Lookup, Tx};
use super::{
    audit, evidence, limits, outbox, push_outbox, run, LimitKind, Limits, NewSession, OtpSession, PendingPush, SessionOpened, Store,
    StoreResult,
};
use crate::clock::Millis;
use crate::model::{AuditEvent, CeremonyKind, Fingerprint, LinkedSession, Method, Owner, Session, State};
use crate::notify::push::Announced;
use crate::notify::{Notice, OutgoingSms};
use crate::token::SecretHash;

impl Store {
    /// Opens a waiting session unless a limit refuses it, answering in this
    /// order: a code for the same request sent too recently, an approval
    /// waiting on the user's phone (when pushes refuse rather than
    /// supersede), then the user's open sessions, the partner's rate, the
    /// user's SMS rate. The session, its notice (SMS or push) and its audit
    /// event are stored together or not at all; a refusal stores nothing
    /// and takes nothing from any rate.
    pub async fn open_session(
        &self,
        new: NewSession<'_>,
        limits: &Limits,
        notice: Option<&Notice>,
        audit: &AuditEvent,
    ) -> StoreResult<SessionOpened> {
        let summary = serde_json::to_string(&new.action.summary())?;
        // A code the new one supersedes must not come back after a power
        // cut; any other opening lost to one leads nowhere (the partner
        // starts again), and its answer (the new token, or a refusal)
        // shows nothing others wrote that a power cut could undo.
        // So must a push that supersedes a waiting approval.
        let kind = if new.otp.is_some() || notice.and_then(Notice::push).is_some() { Kind::Durable } else { Kind::Independent };
        run!(self, kind, |tx| open(tx, &new, &summary, limits, notice, audit))
    }

    pub async fn session_by_token(&self, hash: &SecretHash, lookup: Lookup) -> StoreResult<Option<Session>> {
        let row = run!(self, lookup.kind(), |tx| by_token(tx, hash))?;
        row.map(SessionRow::parse).transpose()
    }

    /// The owner's newest waiting `sms-otp` session, the one for
    /// `fingerprint` first.
    pub async fn otp_session(&self, owner: &Owner, fingerprint: &Fingerprint) -> StoreResult<Option<OtpSession>> {
        let row = run!(self, Kind::Read, |tx| otp_session(tx, owner, fingerprint))?;
        row.map(OtpRow::parse).transpose()
    }

    /// The session an approval link opens, its partner's name, the user's
    /// passkeys and the pending ceremony of `ceremony`, on one snapshot.
    pub async fn session_by_link(
        &self,
        link_hash: &SecretHash,
        ceremony: Option<CeremonyKind>,
        lookup: Lookup,
    ) -> StoreResult<Option<LinkedSession>> {
        let rows = run!(self, lookup.one_statement(), |tx| by_link(tx, link_hash, ceremony))?;
        // JSON is parsed once the connection is released.
        rows.map(LinkedRows::parse).transpose()
    }

    /// Records a partner's poll of its session and reads it, unless the
    /// last poll was less than `min_gap_ms` ago (`None`, as for a session
    /// that is not the owner's; `mock_only`: a mock session only).
    pub async fn record_poll(
        &self,
        token_hash: &SecretHash,
        owner: &Owner,
        mock_only: bool,
        now: Millis,
        min_gap_ms: i64,
    ) -> StoreResult<Option<Session>> {
        // A poll time lost to a power cut only allows one more poll.
        let row = run!(self, Kind::RelaxedOne, |tx| record_poll(tx, token_hash, owner, mock_only, now, min_gap_ms))?;
        row.map(SessionRow::parse).transpose()
    }

    /// Moves a waiting, unexpired session to `to` (a compare-and-set:
    /// `false` if it was not waiting), keeping the evidence of what the
    /// user saw and the audit event with the decision.
    pub async fn decide_session(
        &self,
        session_id: &str,
        to: State,
        now: Millis,
        audit: &AuditEvent,
        evidence: Option<&str>,
    ) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| decide_and_log(tx, session_id, to, now, audit, evidence))
    }

    /// Denies a waiting session the user reported ("this wasn't me"),
    /// with the report's audit event and the SMS telling the user what to
    /// do, together; false if it was no longer waiting.
    pub async fn report_session(&self, session_id: &str, now: Millis, audit: &AuditEvent, sms: &OutgoingSms) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| async {
            let denied = decide(tx, session_id, State::Deny, now).await?;
            if denied {
                outbox::insert(tx, sms).await?;
                audit::append(tx, audit, None).await?;
            }
            Ok(End::Commit(denied))
        })
    }

    /// Reserves one of the approval link's `max` password attempts; `false`
    /// when none is left.
    pub async fn reserve_attempt(&self, session_id: &str, max: u32) -> StoreResult<bool> {
        // Durable: an attempt forgotten by a power cut would be a free guess.
        run!(self, Kind::Durable, |tx| async {
            let reserved = tx
                .execute(
                    "UPDATE sca_sessions SET password_attempts = password_attempts + 1 WHERE id = $1 AND password_attempts < $2",
                    &[session_id.into(), max.into()],
                )
                .await?;
            Ok(End::Commit(reserved == 1))
        })
    }

    /// Gives back a reserved attempt (the password was right).
    pub async fn refund_attempt(&self, session_id: &str) -> StoreResult<()> {
        run!(self, Kind::Relaxed, |tx| async {
            tx.execute(
                "UPDATE sca_sessions SET password_attempts = password_attempts - 1 WHERE id = $1 AND password_attempts > 0",
                &[session_id.into()],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    /// The approval link's password attempts left (none for a session
    /// that does not exist).
    pub async fn attempts_left(&self, session_id: &str, max: u32) -> StoreResult<u32> {
        run!(self, Kind::Read, |tx| async {
            let made: Option<u32> = tx
                .query_opt("SELECT password_attempts FROM sca_sessions WHERE id = $1", &[session_id.into()])
                .await?
                .map(|r| r.get(0))
                .transpose()?;
            Ok(End::Commit(max.saturating_sub(made.unwrap_or(max))))
        })
    }
}

async fn open(
    tx: &impl Tx,
    new: &NewSession<'_>,
    summary: &str,
    limits: &Limits,
    notice: Option<&Notice>,
    event: &AuditEvent,
) -> StoreResult<End<SessionOpened>> {
    let now = new.created_at;
    if tx.dialect() == Dialect::Postgres {
        // One opening at a time per user across instances (SQLite's
        // writers are serialised already): one code per request at a time.
        tx.query_opt("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[new.owner.user_id.as_str().into()]).await?;
    }
    if let Some(otp) = &new.otp {
        if let Some(retry_after_ms) = otp_wait(tx, new, otp.resend_after_ms).await? {
            return Ok(End::Rollback(SessionOpened::TooSoon { retry_after_ms }));
        }
    }
    let pushes = notice.and_then(Notice::push).is_some();
    if pushes && limits.pending_push == PendingPush::Refuse {
        if let Some(expires_at) = pending_push(tx, new).await? {
            return Ok(End::Rollback(SessionOpened::Limited { limit: LimitKind::PendingPush, retry_after_ms: expires_at - now.0 }));
        }
    }
    let partner_key = format!("partner:{}:sessions", new.owner.partner_id);
    let sms = notice.and_then(Notice::sms);
    if let Some((limit, retry_after_ms)) = user_limits(tx, new.owner, limits, sms.is_some(), now).await? {
        // The partner's rate answers before the SMS rate: asked here only
        // to choose the answer, and rolled back with the rest.
        if limit == LimitKind::Sms {
            if let Err(retry_after_ms) = limits::take(tx, &partner_key, limits.sessions_per_partner, now).await? {
                return Ok(End::Rollback(SessionOpened::Limited { limit: LimitKind::PartnerSessions, retry_after_ms }));
            }
        }
        return Ok(End::Rollback(SessionOpened::Limited { limit, retry_after_ms }));
    }
    // Only now that the new code will be sent does the old one stop working;
    // only now that the new push will be sent is the waiting one superseded.
    if new.otp.is_some() {
        deny_waiting_otps(tx, new).await?;
    }
    if pushes {
        deny_pending_pushes(tx, new).await?;
    }
    let id = uuid::Uuid::now_v7().to_string();
    tx.execute(
        "INSERT INTO sca_sessions (id, token_hash, link_hash, partner_id, user_id, method, action_type,
             fingerprint, summary, state, created_at, expires_at, otp_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        &[
            id.as_str().into(),
            new.token_hash.0[..].into(),
            new.link_hash.as_ref().map(|h| &h.0[..]).into(),
            new.owner.partner_id.as_str().into(),
            new.owner.user_id.as_str().into(),
            new.method.as_str().into(),
            new.action.action_type().into(),
            new.fingerprint.0[..].into(),
            summary.into(),
            State::Waiting.as_str().into(),
            now.0.into(),
            new.expires_at.0.into(),
            new.otp.as_ref().map(|otp| &otp.mac.0[..]).into(),
        ],
    )
    .await?;
    match notice {
        Some(Notice::Sms(sms)) => outbox::insert(tx, sms).await?,
        Some(Notice::Push(push)) => push_outbox::insert(tx, push, &Announced::Approval(id.clone())).await?,
        None => {}
    }
    audit::append(tx, event, Some(&id)).await?;
    // Last the row all the partner's openings share, locked (on
    // PostgreSQL) from here to the commit: every statement after it would
    // make each opening of every instance wait longer for the one before.
    if let Err(retry_after_ms) = limits::take(tx, &partner_key, limits.sessions_per_partner, now).await? {
        return Ok(End::Rollback(SessionOpened::Limited { limit: LimitKind::PartnerSessions, retry_after_ms }));
    }
    Ok(End::Commit(SessionOpened::Opened(id)))
}

/// The user's own limits: open sessions (counted over the partial index of
/// waiting sessions), then the SMS rate (taken).
async fn user_limits(tx: &impl Tx, owner: &Owner, limits: &Limits, sends_sms: bool, now: Millis) -> StoreResult<Option<(LimitKind, i64)>> {
    let row = tx
        .query_one(
            "SELECT COUNT(*), MIN(expires_at) FROM sca_sessions WHERE user_id = $1 AND state = 'waiting' AND expires_at > $2",
            &[owner.user_id.as_str().into(), now.0.into()],
        )
        .await?;
    let (open, soonest): (u32, Option<i64>) = (row.get(0)?, row.get(1)?);
    if open >= limits.open_sessions_per_user {
        return Ok(Some((LimitKind::OpenSessions, soonest.map_or(1_000, |at| at - now.0))));
    }
    if sends_sms {
        let sms_key = format!("user:{}:sms", owner.user_id);
        if let Err(retry_after_ms) = limits::take(tx, &sms_key, limits.sms_per_user, now).await? {
            return Ok(Some((LimitKind::Sms, retry_after_ms)));
        }
    }
    Ok(None)
}

/// How long a new code for the same request must still wait: the owner's
/// newest waiting one was sent less than `resend_after_ms` ago.
async fn otp_wait(tx: &impl Tx, new: &NewSession<'_>, resend_after_ms: i64) -> StoreResult<Option<i64>> {
    let now = new.created_at.0;
    let owner = new.owner;
    let latest: Option<i64> = tx
        .query_one(
            "SELECT MAX(created_at) FROM sca_sessions
             WHERE user_id = $1 AND state = 'waiting' AND method = $4 AND partner_id = $2 AND fingerprint = $3",
            &[
                owner.user_id.as_str().into(),
                owner.partner_id.as_str().into(),
                new.fingerprint.0[..].into(),
                Method::SmsOtp.as_str().into(),
            ],
        )
        .await?
        .get(0)?;
    // A code "sent" in the future (a clock step back) does not hold the next one.
    Ok(latest.filter(|sent| *sent + resend_after_ms > now && *sent <= now).map(|sent| sent + resend_after_ms - now))
}

/// The owner's waiting codes for the same request are superseded (denied);
/// a later refusal of the opening rolls the denial back with the rest.
async fn deny_waiting_otps(tx: &impl Tx, new: &NewSession<'_>) -> StoreResult<()> {
    tx.execute(
        "UPDATE sca_sessions SET state = $5, decided_at = $4
         WHERE user_id = $1 AND state = 'waiting' AND method = $6 AND partner_id = $2 AND fingerprint = $3",
        &[
            new.owner.user_id.as_str().into(),
            new.owner.partner_id.as_str().into(),
            new.fingerprint.0[..].into(),
            new.created_at.0.into(),
            State::Deny.as_str().into(),
            Method::SmsOtp.as_str().into(),
        ],
    )
    .await?;
    Ok(())
}

/// When the user's approval waiting on their phone runs out, if one waits.
async fn pending_push(tx: &impl Tx, new: &NewSession<'_>) -> StoreResult<Option<i64>> {
    let row = tx
        .query_one(
            "SELECT MIN(expires_at) FROM sca_sessions WHERE user_id = $1 AND state = 'waiting' AND method = $2 AND expires_at > $3",
            &[new.owner.user_id.as_str().into(), Method::PairedDevice.as_str().into(), new.created_at.0.into()],
        )
        .await?;
    row.get(0)
}

/// Denies the user's approvals waiting on their phone (superseded by the
/// new one): their polls read `deny`, `canceled_at` the supersession.
async fn deny_pending_pushes(tx: &impl Tx, new: &NewSession<'_>) -> StoreResult<()> {
    tx.execute(
        "UPDATE sca_sessions SET state = $3, decided_at = $2 WHERE user_id = $1 AND state = 'waiting' AND method = $4",
        &[new.owner.user_id.as_str().into(), new.created_at.0.into(), State::Deny.as_str().into(), Method::PairedDevice.as_str().into()],
    )
    .await?;
    Ok(())
}

async fn by_token(tx: &impl Tx, hash: &SecretHash) -> StoreResult<End<Option<SessionRow>>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sca_sessions WHERE token_hash = $1");
    let row = tx.query_opt(&sql, &[hash.0[..].into()]).await?;
    Ok(End::Commit(row.as_ref().map(SessionRow::read).transpose()?))
}

async fn otp_session(tx: &impl Tx, owner: &Owner, fingerprint: &Fingerprint) -> StoreResult<End<Option<OtpRow>>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, token_hash, otp_hash FROM sca_sessions
         WHERE user_id = $1 AND state = 'waiting' AND method = $4 AND partner_id = $2 AND otp_hash IS NOT NULL
         ORDER BY fingerprint = $3 DESC, created_at DESC LIMIT 1"
    );
    let params =
        [owner.user_id.as_str().into(), owner.partner_id.as_str().into(), fingerprint.0[..].into(), Method::SmsOtp.as_str().into()];
    let row = tx.query_opt(&sql, &params).await?;
    let row = row.map(|r| Ok::<_, super::StoreError>(OtpRow { session: SessionRow::read(&r)?, token_hash: r.get(11)?, mac: r.get(12)? }));
    Ok(End::Commit(row.transpose()?))
}

/// One statement (every approval page's start and finish read it): a row
/// per passkey of the user (one with none if they have none), each with
/// the session, its partner's name and the pending ceremony of `kind`.
async fn by_link(tx: &impl Tx, link_hash: &SecretHash, kind: Option<CeremonyKind>) -> StoreResult<End<Option<LinkedRows>>> {
    let sql = format!(
        "SELECT s.*, c.ceremony_id, c.state, k.id, k.passkey, k.sign_count
         FROM (SELECT {SESSION_COLUMNS}, (SELECT name FROM partners WHERE partners.id = partner_id) AS partner_name
               FROM sca_sessions WHERE link_hash = $1) s
         LEFT JOIN webauthn_ceremonies c ON c.sca_session_id = s.id AND c.kind = $2
         LEFT JOIN passkeys k ON k.user_id = s.user_id
         ORDER BY k.created_at, k.id"
    );
    let rows = tx.query(&sql, &[link_hash.0[..].into(), kind.map(CeremonyKind::as_str).into()]).await?;
    let Some(first) = rows.first() else { return Ok(End::Commit(None)) };
    let ceremony = match (kind, first.get::<Option<i64>>(12)?, first.get::<Option<String>>(13)?) {
        (Some(kind), Some(id), Some(state)) => Some((kind, id, state)),
        _ => None,
    };
    let passkeys = rows
        .iter()
        .filter_map(|r| r.get::<Option<String>>(14).transpose().map(|id| Ok((id?, r.get(15)?, r.get(16)?))))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(End::Commit(Some(LinkedRows { session: SessionRow::read(first)?, partner_name: first.get(11)?, passkeys, ceremony })))
}

/// The session's pending ceremony of `kind` (kind, id, saved state).
pub(super) async fn pending_ceremony(
    tx: &impl Tx,
    session_id: &str,
    kind: Option<CeremonyKind>,
) -> StoreResult<Option<(CeremonyKind, i64, String)>> {
    let Some(kind) = kind else { return Ok(None) };
    tx.query_opt(
        "SELECT ceremony_id, state FROM webauthn_ceremonies WHERE sca_session_id = $1 AND kind = $2",
        &[session_id.into(), kind.as_str().into()],
    )
    .await?
    .map(|r| Ok((kind, r.get(0)?, r.get(1)?)))
    .transpose()
}

async fn record_poll(
    tx: &impl Tx,
    token_hash: &SecretHash,
    owner: &Owner,
    mock_only: bool,
    now: Millis,
    min_gap_ms: i64,
) -> StoreResult<End<Option<SessionRow>>> {
    let sql = format!(
        "UPDATE sca_sessions SET last_polled_at = $1
         WHERE token_hash = $2 AND partner_id = $3 AND user_id = $4 AND (NOT $5 OR method = $8)
           AND (last_polled_at IS NULL OR last_polled_at <= $6 OR last_polled_at > $7)
         RETURNING {SESSION_COLUMNS}"
    );
    // A poll time more than a gap ahead (a clock stepped back) must not
    // lock polling out; one just ahead is a concurrent poll that read the
    // clock later and wrote first: it counts.
    let row = tx
        .query_opt(
            &sql,
            &[
                now.0.into(),
                token_hash.0[..].into(),
                owner.partner_id.as_str().into(),
                owner.user_id.as_str().into(),
                mock_only.into(),
                (now.0 - min_gap_ms).into(),
                (now.0 + min_gap_ms).into(),
                Method::Mock.as_str().into(),
            ],
        )
        .await?;
    Ok(End::Commit(row.as_ref().map(SessionRow::read).transpose()?))
}

/// Moves a waiting, unexpired session to `to`; `false` if it was not.
pub(super) async fn decide(tx: &impl Tx, session_id: &str, to: State, now: Millis) -> StoreResult<bool> {
    let changed = tx
        .execute(
            "UPDATE sca_sessions SET state = $1, decided_at = $2 WHERE id = $3 AND state = $4 AND expires_at > $2",
            &[to.as_str().into(), now.0.into(), session_id.into(), State::Waiting.as_str().into()],
        )
        .await?;
    Ok(changed == 1)
}

async fn decide_and_log(
    tx: &impl Tx,
    session_id: &str,
    to: State,
    now: Millis,
    event: &AuditEvent,
    kept: Option<&str>,
) -> StoreResult<End<bool>> {
    let decided = decide(tx, session_id, to, now).await?;
    if decided {
        // The evidence chain's turn before the log's, everywhere.
        if let Some(kept) = kept {
            evidence::keep(tx, session_id, kept, now).await?;
        }
        audit::append(tx, event, None).await?;
    }
    Ok(End::Commit(decided))
}

#[cfg(test)]
mod tests {
    use crate::model::State;

    #[test]
    fn the_literal_is_the_models_name() {
        assert_eq!(State::Waiting.as_str(), "waiting");
    }
}
