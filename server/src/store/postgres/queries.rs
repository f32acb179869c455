//! Every PostgreSQL query of Passgate, each inside the caller's
//! transaction; statements are prepared once per connection.

use deadpool_postgres::Transaction;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::End;
use uuid::Uuid;

use crate::chain::{self, Chain, ChainKey};
use crate::clock::Millis;
use crate::email::Email;
use crate::ledger::{Action, Created, TRANSFER_STATUS};
use crate::model::{
    AuditEvent, Caller, CeremonyKind, Company, Fingerprint, Owner, PasskeySummary, PendingCeremony, RegistryEntry, Role, State, TotpFactor,
    TwoFactorPolicy, UserRecord,
};
use crate::password::PasswordHash;
use crate::phone::Phone;
use crate::sms::OutgoingSms;
use crate::store::rows::{
    backed_up, AuditColumns, EvidenceColumns, LinkedRows, OtpRow, PasskeyRow, SessionRow, TransferRow, UserRow, AUDIT_CHAINED,
    EVIDENCE_CHAINED, SESSION_COLUMNS, USER_COLUMNS,
};
use crate::store::{Anchor, ChainRow, ChainState, FactorNotice, NewPasskey, Removal, Removed};
use crate::store::{
    Approved, AuditEntry, AuditQuery, AuditRow, CredentialsSet, Enrolment, KeyWindow, LimitKind, Limits, NewSession, PasskeyUse,
    PurgeBefore, Purged, Rate, RememberedResponse, Replay, ReplayOutcome, Scope, SessionOpened, StoreError, StoreResult,
};
use crate::token::SecretHash;

/// A transaction, with the key that MACs the audit chain's rows (never
/// sent to the database).
pub(super) struct Tx<'a> {
    inner: Transaction<'a>,
    chain_key: &'a ChainKey,
}

impl<'a> Tx<'a> {
    pub(super) fn new(inner: Transaction<'a>, chain_key: &'a ChainKey) -> Self {
        Tx { inner, chain_key }
    }

    pub(super) async fn commit(self) -> Result<(), tokio_postgres::Error> {
        self.inner.commit().await
    }

    pub(super) async fn rollback(self) -> Result<(), tokio_postgres::Error> {
        self.inner.rollback().await
    }
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = Transaction<'a>;

    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

async fn execute(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}

async fn query_opt(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&statement, params).await?)
}

async fn query_one(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Row> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_one(&statement, params).await?)
}

async fn query(tx: &Tx<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query(&statement, params).await?)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn parse_phone(text: &str) -> StoreResult<Phone> {
    Phone::parse(text).map_err(|_| StoreError::Corrupt("a phone number is not E.164".into()))
}

fn session_row(r: &Row) -> SessionRow {
    SessionRow {
        id: r.get(0),
        partner_id: r.get(1),
        user_id: r.get(2),
        method: r.get(3),
        action_type: r.get(4),
        fingerprint: r.get(5),
        summary: r.get(6),
        state: r.get(7),
        created_at: r.get(8),
        expires_at: r.get(9),
        decided_at: r.get(10),
    }
}

// Directory.

pub(super) async fn caller_by_access_token(tx: &Tx<'_>, hash: &SecretHash) -> StoreResult<Option<Caller>> {
    let row = query_opt(
        tx,
        "SELECT t.partner_id, t.user_id, p.name, p.embed, u.company_id, u.phone
         FROM access_tokens t JOIN partners p ON p.id = t.partner_id JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        &[&&hash.0[..]],
    )
    .await?;
    row.map(|r| {
        Ok(Caller {
            owner: Owner { partner_id: r.get(0), user_id: r.get(1) },
            partner_name: r.get(2),
            embed: r.get(3),
            company_id: r.get(4),
            phone: parse_phone(r.get(5))?,
        })
    })
    .transpose()
}

pub(super) async fn user(tx: &Tx<'_>, user_id: &str) -> StoreResult<Option<UserRecord>> {
    user_where(tx, "id", user_id).await
}

pub(super) async fn user_by_email(tx: &Tx<'_>, email: &Email) -> StoreResult<Option<UserRecord>> {
    user_where(tx, "email", email.as_str()).await
}

pub(super) async fn user_by_webauthn_handle(tx: &Tx<'_>, handle: &Uuid) -> StoreResult<Option<UserRecord>> {
    user_where(tx, "webauthn_handle", &handle.to_string()).await
}

/// The user whose `column` (a unique one) is `value`.
async fn user_where(tx: &Tx<'_>, column: &'static str, value: &str) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1");
    query_opt(tx, &sql, &[&value]).await?.map(|r| user_row(&r).parse()).transpose()
}

/// A row of `SELECT {USER_COLUMNS}`.
fn user_row(r: &Row) -> UserRow {
    UserRow {
        id: r.get(0),
        phone: r.get(1),
        display_name: r.get(2),
        webauthn_handle: r.get(3),
        email: r.get(4),
        password_hash: r.get(5),
        role: r.get(6),
        company_id: r.get(7),
    }
}

pub(super) async fn set_credentials(
    tx: &Tx<'_>,
    user_id: &str,
    email: &Email,
    password: &PasswordHash,
    role: Role,
) -> StoreResult<End<CredentialsSet>> {
    let statement = tx.prepare_cached("UPDATE users SET email = $1, password_hash = $2, role = $3 WHERE id = $4").await?;
    match tx.execute(&statement, &[&email.as_str(), &password.as_str(), &role.as_str(), &user_id]).await {
        // The failed statement aborted the transaction: it rolls back.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(End::Rollback(CredentialsSet::EmailInUse)),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(End::Commit(CredentialsSet::Yes)),
    }
}

pub(super) async fn reserve_attempt(tx: &Tx<'_>, session_id: &str, max: u32) -> StoreResult<bool> {
    let reserved = execute(
        tx,
        "UPDATE sca_sessions SET password_attempts = password_attempts + 1 WHERE id = $1 AND password_attempts < $2",
        &[&session_id, &i32::try_from(max).unwrap_or(i32::MAX)],
    )
    .await?;
    Ok(reserved == 1)
}

pub(super) async fn refund_attempt(tx: &Tx<'_>, session_id: &str) -> StoreResult<()> {
    execute(
        tx,
        "UPDATE sca_sessions SET password_attempts = password_attempts - 1 WHERE id = $1 AND password_attempts > 0",
        &[&session_id],
    )
    .await?;
    Ok(())
}

pub(super) async fn attempts_left(tx: &Tx<'_>, session_id: &str, max: u32) -> StoreResult<u32> {
    let made: Option<i32> =
        query_opt(tx, "SELECT password_attempts FROM sca_sessions WHERE id = $1", &[&session_id]).await?.map(|r| r.get(0));
    let made = made.map_or(max, |m| u32::try_from(m).unwrap_or(max));
    Ok(max.saturating_sub(made))
}

pub(super) async fn ensure_company(tx: &Tx<'_>, name: &str, now: Millis) -> StoreResult<String> {
    execute(
        tx,
        "INSERT INTO companies (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        &[&new_id(), &name, &now.0],
    )
    .await?;
    Ok(query_one(tx, "SELECT id FROM companies WHERE name = $1", &[&name]).await?.get(0))
}

pub(super) async fn ensure_user(tx: &Tx<'_>, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> StoreResult<String> {
    let handle = uuid::Uuid::new_v4().to_string();
    execute(
        tx,
        "INSERT INTO users (id, company_id, phone, display_name, webauthn_handle, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (phone) DO NOTHING",
        &[&new_id(), &company_id, &phone.as_str(), &display_name, &handle, &now.0],
    )
    .await?;
    Ok(query_one(tx, "SELECT id FROM users WHERE phone = $1", &[&phone.as_str()]).await?.get(0))
}

pub(super) async fn ensure_partner(tx: &Tx<'_>, name: &str, embed: bool, now: Millis) -> StoreResult<String> {
    execute(
        tx,
        "INSERT INTO partners (id, name, embed, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        &[&new_id(), &name, &embed, &now.0],
    )
    .await?;
    Ok(query_one(tx, "SELECT id FROM partners WHERE name = $1", &[&name]).await?.get(0))
}

pub(super) async fn insert_access_token(tx: &Tx<'_>, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> StoreResult<()> {
    execute(
        tx,
        "INSERT INTO access_tokens (token_hash, partner_id, user_id, created_at) VALUES ($1, $2, $3, $4)",
        &[&&hash.0[..], &partner_id, &user_id, &now.0],
    )
    .await?;
    Ok(())
}

pub(super) async fn claim_mode(tx: &Tx<'_>, mode: &str) -> StoreResult<String> {
    execute(tx, "INSERT INTO meta (key, value) VALUES ('mode', $1) ON CONFLICT (key) DO NOTHING", &[&mode]).await?;
    Ok(query_one(tx, "SELECT value FROM meta WHERE key = 'mode'", &[]).await?.get(0))
}

// Sessions and limits.

pub(super) async fn open_session(
    tx: &Tx<'_>,
    new: &NewSession<'_>,
    summary: &str,
    limits: &Limits,
    sms: Option<&OutgoingSms>,
    audit: &AuditEvent,
) -> StoreResult<End<SessionOpened>> {
    let now = new.created_at;
    // The order of the answers is `Storage::open_session`'s. Under the
    // user's row lock: one opening at a time per user across instances,
    // so one code per request at a time.
    query_opt(tx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&new.owner.user_id]).await?;
    if let Some(otp) = &new.otp {
        if let Some(retry_after_ms) = otp_wait(tx, new, otp.resend_after_ms).await? {
            return Ok(End::Rollback(SessionOpened::TooSoon { retry_after_ms }));
        }
    }
    let partner_key = format!("partner:{}:sessions", new.owner.partner_id);
    if let Some((limit, retry_after_ms)) = user_limits(tx, new.owner, limits, sms.is_some(), now).await? {
        // The partner's rate answers before the SMS rate: asked here only
        // to choose the answer, and rolled back with the rest.
        if limit == LimitKind::Sms {
            if let Err(retry_after_ms) = take_rate(tx, &partner_key, limits.sessions_per_partner, now).await? {
                return Ok(End::Rollback(SessionOpened::Limited { limit: LimitKind::PartnerSessions, retry_after_ms }));
            }
        }
        return Ok(End::Rollback(SessionOpened::Limited { limit, retry_after_ms }));
    }
    // Only now that the new code will be sent does the old one stop working.
    if new.otp.is_some() {
        deny_waiting_otps(tx, new).await?;
    }
    let id = new_id();
    execute(
        tx,
        "INSERT INTO sca_sessions (id, token_hash, link_hash, partner_id, user_id, method, action_type,
             fingerprint, summary, state, created_at, expires_at, otp_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'waiting', $10, $11, $12)",
        &[
            &id,
            &&new.token_hash.0[..],
            &new.link_hash.as_ref().map(|h| &h.0[..]),
            &new.owner.partner_id,
            &new.owner.user_id,
            &new.method.as_str(),
            &new.action.action_type(),
            &&new.fingerprint.0[..],
            &summary,
            &now.0,
            &new.expires_at.0,
            &new.otp.as_ref().map(|otp| &otp.mac.0[..]),
        ],
    )
    .await?;
    if let Some(sms) = sms {
        insert_sms(tx, sms).await?;
    }
    append_audit(tx, audit, Some(&id)).await?;
    // Last, so that the partner's row, shared by all its users' openings
    // on every instance, stays locked for two statements and the commit.
    if let Err(retry_after_ms) = take_rate(tx, &partner_key, limits.sessions_per_partner, now).await? {
        return Ok(End::Rollback(SessionOpened::Limited { limit: LimitKind::PartnerSessions, retry_after_ms }));
    }
    Ok(End::Commit(SessionOpened::Opened(id)))
}

/// The user's own limits (open sessions, then the SMS rate), under the
/// user's row lock taken by the caller.
async fn user_limits(tx: &Tx<'_>, owner: &Owner, limits: &Limits, sends_sms: bool, now: Millis) -> StoreResult<Option<(LimitKind, i64)>> {
    let row = query_one(
        tx,
        "SELECT COUNT(*), MIN(expires_at) FROM sca_sessions WHERE user_id = $1 AND state = 'waiting' AND expires_at > $2",
        &[&owner.user_id, &now.0],
    )
    .await?;
    let (open, soonest): (i64, Option<i64>) = (row.get(0), row.get(1));
    if open >= i64::from(limits.open_sessions_per_user) {
        return Ok(Some((LimitKind::OpenSessions, soonest.map_or(1_000, |at| at - now.0))));
    }
    if sends_sms {
        let sms_key = format!("user:{}:sms", owner.user_id);
        if let Err(retry_after_ms) = take_rate(tx, &sms_key, limits.sms_per_user, now).await? {
            return Ok(Some((LimitKind::Sms, retry_after_ms)));
        }
    }
    Ok(None)
}

/// One admission of a GCRA rate: the row is created and locked by one
/// statement, then moved forward; `Err` is the wait in milliseconds.
async fn take_rate(tx: &Tx<'_>, key: &str, rate: Rate, now: Millis) -> StoreResult<Result<(), i64>> {
    let tat: i64 = query_one(
        tx,
        "INSERT INTO rate_limits (key, tat) VALUES ($1, 0) ON CONFLICT (key) DO UPDATE SET tat = rate_limits.tat RETURNING tat",
        &[&key],
    )
    .await?
    .get(0);
    match rate.admit(Some(Millis(tat)), now) {
        Ok(next) => {
            execute(tx, "UPDATE rate_limits SET tat = $2 WHERE key = $1", &[&key, &next.0]).await?;
            Ok(Ok(()))
        }
        Err(retry_after_ms) => Ok(Err(retry_after_ms)),
    }
}

/// Ends the user's browser sessions but `keep`, and their trusted browsers.
async fn end_other_sessions(tx: &Tx<'_>, user_id: &str, keep: Option<&SecretHash>) -> StoreResult<u64> {
    let keep: &[u8] = keep.map_or(&[], |k| &k.0[..]);
    let ended = execute(tx, "DELETE FROM browser_sessions WHERE user_id = $1 AND token_hash <> $2", &[&user_id, &keep]).await?;
    execute(tx, "DELETE FROM trusted_devices WHERE user_id = $1", &[&user_id]).await?;
    Ok(ended)
}

// Companies: the policy, the admins' report and removals.

pub(super) async fn company(tx: &Tx<'_>, company_id: &str) -> StoreResult<Option<Company>> {
    let row = query_opt(tx, "SELECT id, name, two_factor FROM companies WHERE id = $1", &[&company_id]).await?;
    row.map(|r| {
        let policy: String = r.get(2);
        let two_factor =
            TwoFactorPolicy::parse(&policy).ok_or_else(|| StoreError::Corrupt(format!("unknown two-factor policy {policy:?}")))?;
        Ok(Company { id: r.get(0), name: r.get(1), two_factor })
    })
    .transpose()
}

pub(super) async fn set_two_factor_policy(tx: &Tx<'_>, company_id: &str, policy: TwoFactorPolicy, event: &AuditEvent) -> StoreResult<()> {
    execute(tx, "UPDATE companies SET two_factor = $1 WHERE id = $2", &[&policy.as_str(), &company_id]).await?;
    append_audit(tx, event, None).await
}

pub(super) async fn users_of_company(tx: &Tx<'_>, company_id: &str) -> StoreResult<Vec<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE company_id = $1 ORDER BY display_name, id");
    let rows = query(tx, &sql, &[&company_id]).await?;
    rows.iter().map(|r| user_row(r).parse()).collect()
}

pub(super) async fn totp_of_company(tx: &Tx<'_>, company_id: &str) -> StoreResult<Vec<(String, TotpFactor)>> {
    let rows = query(
        tx,
        "SELECT t.user_id, t.sealed_key, t.created_at, t.confirmed_at, t.last_used_at, t.locked_until, t.last_step, t.next_created_at
         FROM totp_factors t JOIN users u ON u.id = t.user_id WHERE u.company_id = $1",
        &[&company_id],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let factor = TotpFactor {
                sealed_key: r.get(1),
                created_at: Millis(r.get(2)),
                confirmed_at: r.get::<_, Option<i64>>(3).map(Millis),
                last_used_at: r.get::<_, Option<i64>>(4).map(Millis),
                locked_until: r.get::<_, Option<i64>>(5).map(Millis),
                last_step: r.get(6),
                replacing_since: r.get::<_, Option<i64>>(7).map(Millis),
            };
            (r.get(0), factor)
        })
        .collect())
}

pub(super) async fn passkey_summaries(tx: &Tx<'_>, scope: Scope<'_>) -> StoreResult<Vec<PasskeySummary>> {
    let (join, condition, id) = match scope {
        Scope::User(id) => ("", "p.user_id = $1", id),
        Scope::Company(id) => ("JOIN users u ON u.id = p.user_id", "u.company_id = $1", id),
    };
    let sql = format!(
        "SELECT p.id, p.user_id, p.name, p.created_at, p.last_used_at, p.passkey
         FROM passkeys p {join} WHERE {condition} ORDER BY p.created_at, p.id"
    );
    let rows = query(tx, &sql, &[&id]).await?;
    rows.iter()
        .map(|r| {
            let passkey: String = r.get(5);
            Ok(PasskeySummary {
                id: r.get(0),
                user_id: r.get(1),
                name: r.get(2),
                created_at: Millis(r.get(3)),
                last_used_at: r.get::<_, Option<i64>>(4).map(Millis),
                backed_up: backed_up(&passkey)?,
            })
        })
        .collect()
}

pub(super) async fn rename_passkey(tx: &Tx<'_>, user_id: &str, passkey_id: &str, name: &str) -> StoreResult<bool> {
    Ok(execute(tx, "UPDATE passkeys SET name = $1 WHERE id = $2 AND user_id = $3", &[&name, &passkey_id, &user_id]).await? == 1)
}

pub(super) async fn remove_totp(tx: &Tx<'_>, removal: &Removal<'_>) -> StoreResult<Removed> {
    let user_id = removal.user_id;
    // The user's row lock orders removals of their factors: the guarded
    // delete below then reads what the other one left (READ COMMITTED
    // takes a new snapshot per statement).
    execute(tx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await?;
    let removed = execute(
        tx,
        "DELETE FROM totp_factors WHERE user_id = $1 AND (NOT $2 OR (SELECT passkey_count FROM users WHERE id = $1) > 0)",
        &[&user_id, &removal.keep_one],
    )
    .await?
        == 1;
    if !removed {
        let exists = query_opt(tx, "SELECT 1 FROM totp_factors WHERE user_id = $1", &[&user_id]).await?.is_some();
        return Ok(if exists { Removed::LastFactor } else { Removed::Absent });
    }
    execute(tx, "DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
    removed_with(tx, removal).await
}

pub(super) async fn remove_passkey(tx: &Tx<'_>, passkey_id: &str, removal: &Removal<'_>) -> StoreResult<Removed> {
    let user_id = removal.user_id;
    execute(tx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id]).await?;
    let removed = query_opt(
        tx,
        "DELETE FROM passkeys WHERE id = $1 AND user_id = $2
           AND (NOT $3 OR (SELECT passkey_count FROM users WHERE id = $2)
               + (SELECT COUNT(*) FROM totp_factors WHERE user_id = $2 AND confirmed_at IS NOT NULL) > 1)
         RETURNING credential_id",
        &[&passkey_id, &user_id, &removal.keep_one],
    )
    .await?;
    let Some(removed) = removed else {
        let exists = query_opt(tx, "SELECT 1 FROM passkeys WHERE id = $1 AND user_id = $2", &[&passkey_id, &user_id]).await?.is_some();
        return Ok(if exists { Removed::LastFactor } else { Removed::Absent });
    };
    execute(tx, "UPDATE users SET passkey_count = passkey_count - 1 WHERE id = $1 AND passkey_count > 0", &[&user_id]).await?;
    let credential_id: Vec<u8> = removed.get(0);
    execute(
        tx,
        "INSERT INTO credential_registry (user_id, credential_id, event, at) VALUES ($1, $2, 'removed', $3)",
        &[&user_id, &credential_id, &removal.notice.audit.at.0],
    )
    .await?;
    removed_with(tx, removal).await
}

/// What goes with a removed factor: the user's other sessions and trusted
/// browsers; the audit event and the SMS notice.
async fn removed_with(tx: &Tx<'_>, removal: &Removal<'_>) -> StoreResult<Removed> {
    end_other_sessions(tx, removal.user_id, removal.keep_session).await?;
    insert_sms(tx, removal.notice.sms).await?;
    append_audit(tx, removal.notice.audit, None).await?;
    Ok(Removed::Yes)
}

// Passkeys in the account area.

pub(super) async fn add_passkey(
    tx: &Tx<'_>,
    new: &NewPasskey<'_>,
    passkey_json: &str,
    notice: &FactorNotice<'_>,
) -> StoreResult<End<bool>> {
    let credential_id: &[u8] = new.passkey.cred_id().as_ref();
    let statement = tx
        .prepare_cached(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, sign_count, created_at, name) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .await?;
    let inserted = tx
        .execute(&statement, &[&new_id(), &new.user_id, &credential_id, &passkey_json, &i64::from(new.sign_count), &new.now.0, &new.name])
        .await;
    match inserted {
        // The failed statement aborted the transaction: it rolls back.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(End::Rollback(false)),
        other => other?,
    };
    execute(tx, "UPDATE users SET passkey_count = passkey_count + 1 WHERE id = $1", &[&new.user_id]).await?;
    register_credential(tx, new.user_id, new.passkey, new.attestation, new.now).await?;
    insert_sms(tx, notice.sms).await?;
    append_audit(tx, notice.audit, None).await?;
    Ok(End::Commit(true))
}

/// How long a new code for the same request must still wait: the owner's
/// newest waiting one was sent less than `resend_after_ms` ago.
async fn otp_wait(tx: &Tx<'_>, new: &NewSession<'_>, resend_after_ms: i64) -> StoreResult<Option<i64>> {
    let now = new.created_at.0;
    let owner = new.owner;
    let fingerprint = &new.fingerprint.0[..];
    let row = query_one(
        tx,
        "SELECT MAX(created_at) FROM sca_sessions
         WHERE user_id = $1 AND state = 'waiting' AND method = 'sms-otp' AND partner_id = $2 AND fingerprint = $3",
        &[&owner.user_id, &owner.partner_id, &fingerprint],
    )
    .await?;
    let latest: Option<i64> = row.get(0);
    // A code "sent" in the future (a clock step back) does not hold the next one.
    if let Some(sent) = latest.filter(|sent| *sent + resend_after_ms > now && *sent <= now) {
        return Ok(Some(sent + resend_after_ms - now));
    }
    Ok(None)
}

/// The owner's waiting codes for the same request are superseded (denied);
/// a later refusal of the opening rolls the denial back with the rest.
async fn deny_waiting_otps(tx: &Tx<'_>, new: &NewSession<'_>) -> StoreResult<()> {
    execute(
        tx,
        "UPDATE sca_sessions SET state = 'deny', decided_at = $4
         WHERE user_id = $1 AND state = 'waiting' AND method = 'sms-otp' AND partner_id = $2 AND fingerprint = $3",
        &[&new.owner.user_id, &new.owner.partner_id, &&new.fingerprint.0[..], &new.created_at.0],
    )
    .await?;
    Ok(())
}

/// The owner's newest waiting `sms-otp` session, the one for `fingerprint` first.
pub(super) async fn otp_session(tx: &Tx<'_>, owner: &Owner, fingerprint: &Fingerprint) -> StoreResult<Option<OtpRow>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, token_hash, otp_hash FROM sca_sessions
         WHERE user_id = $1 AND state = 'waiting' AND method = 'sms-otp' AND partner_id = $2 AND otp_hash IS NOT NULL
         ORDER BY fingerprint = $3 DESC, created_at DESC LIMIT 1"
    );
    let row = query_opt(tx, &sql, &[&owner.user_id, &owner.partner_id, &&fingerprint.0[..]]).await?;
    Ok(row.map(|r| OtpRow { session: session_row(&r), token_hash: r.get(11), mac: r.get(12) }))
}

pub(super) async fn session_by_token(tx: &Tx<'_>, hash: &SecretHash) -> StoreResult<Option<SessionRow>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sca_sessions WHERE token_hash = $1");
    Ok(query_opt(tx, &sql, &[&&hash.0[..]]).await?.map(|r| session_row(&r)))
}

pub(super) async fn record_poll(
    tx: &Tx<'_>,
    token_hash: &SecretHash,
    owner: &Owner,
    mock_only: bool,
    now: Millis,
    min_gap_ms: i64,
) -> StoreResult<Option<SessionRow>> {
    let sql = format!(
        "UPDATE sca_sessions SET last_polled_at = $1
         WHERE token_hash = $2 AND partner_id = $3 AND user_id = $4 AND (NOT $5 OR method = 'mock')
           AND (last_polled_at IS NULL OR last_polled_at <= $6 OR last_polled_at > $7)
         RETURNING {SESSION_COLUMNS}"
    );
    // A poll time more than a gap ahead (a clock stepped back) must not
    // lock polling out; one just ahead is a concurrent poll that read the
    // clock later and wrote first: it counts.
    let (gap_ago, gap_ahead) = (now.0 - min_gap_ms, now.0 + min_gap_ms);
    let row =
        query_opt(tx, &sql, &[&now.0, &&token_hash.0[..], &owner.partner_id, &owner.user_id, &mock_only, &gap_ago, &gap_ahead]).await?;
    Ok(row.map(|r| session_row(&r)))
}

pub(super) async fn decide(tx: &Tx<'_>, session_id: &str, to: State, now: Millis) -> StoreResult<bool> {
    let changed = execute(
        tx,
        "UPDATE sca_sessions SET state = $1, decided_at = $2 WHERE id = $3 AND state = 'waiting' AND expires_at > $2",
        &[&to.as_str(), &now.0, &session_id],
    )
    .await?;
    Ok(changed == 1)
}

/// The replay. An idempotency key is claimed first (its row inserted, or a
/// row past its window taken over): a concurrent replay with the same key
/// waits on that row, then reads the answer it holds.
pub(super) async fn consume_and_run(tx: &Tx<'_>, replay: &Replay<'_>) -> StoreResult<End<ReplayOutcome>> {
    let caller = replay.caller;
    if let Some(key) = replay.idempotency {
        let claimed = execute(
            tx,
            "INSERT INTO idempotency_keys (partner_id, key, user_id, fingerprint, status, body, created_at)
             VALUES ($1, $2, $3, $4, 0, '', $5)
             ON CONFLICT (partner_id, key) DO UPDATE
             SET user_id = excluded.user_id, fingerprint = excluded.fingerprint, status = 0, body = '', created_at = excluded.created_at
             WHERE idempotency_keys.created_at < $6",
            &[&caller.owner.partner_id, &key.key, &caller.owner.user_id, &&replay.fingerprint.0[..], &replay.now.0, &key.not_before.0],
        )
        .await?;
        if claimed == 0 {
            let remembered = remembered(tx, &caller.owner.partner_id, key).await?;
            return Ok(End::Rollback(match remembered {
                Some(r) if r.answers(&caller.owner, replay.fingerprint) => ReplayOutcome::Remembered(r.created),
                _ => ReplayOutcome::KeyReused,
            }));
        }
    }
    let consumed = query_opt(
        tx,
        "UPDATE sca_sessions SET state = 'consumed', consumed_at = $1
         WHERE token_hash = $2 AND partner_id = $3 AND user_id = $4 AND fingerprint = $5 AND state = 'allow' AND expires_at > $1
         RETURNING id",
        &[&replay.now.0, &&replay.token_hash.0[..], &caller.owner.partner_id, &caller.owner.user_id, &&replay.fingerprint.0[..]],
    )
    .await?;
    // Nothing consumed: the claim of the key goes with the rollback.
    let Some(consumed) = consumed else { return Ok(End::Rollback(ReplayOutcome::Refused)) };
    let session_id: String = consumed.get(0);
    let created = run_action(tx, &session_id, caller, replay.action, replay.now).await?;
    if let Some(key) = replay.idempotency {
        execute(
            tx,
            "UPDATE idempotency_keys SET status = 201, body = $3 WHERE partner_id = $1 AND key = $2",
            &[&caller.owner.partner_id, &key.key, &created.0],
        )
        .await?;
    }
    Ok(End::Commit(ReplayOutcome::Ran(created)))
}

pub(super) async fn remembered(tx: &Tx<'_>, partner_id: &str, key: KeyWindow<'_>) -> StoreResult<Option<RememberedResponse>> {
    let row = query_opt(
        tx,
        "SELECT user_id, fingerprint, body FROM idempotency_keys WHERE partner_id = $1 AND key = $2 AND created_at >= $3 AND status = 201",
        &[&partner_id, &key.key, &key.not_before.0],
    )
    .await?;
    row.map(|r| {
        let fingerprint: Vec<u8> = r.get(1);
        let fingerprint = fingerprint.try_into().map_err(|_| StoreError::Corrupt("an idempotency fingerprint".into()))?;
        Ok(RememberedResponse { user_id: r.get(0), fingerprint: Fingerprint(fingerprint), created: Created(r.get(2)) })
    })
    .transpose()
}

async fn run_action(tx: &Tx<'_>, session_id: &str, caller: &Caller, action: &Action, now: Millis) -> StoreResult<Created> {
    let id = new_id();
    match action {
        Action::Transfer(t) => {
            execute(
                tx,
                "INSERT INTO transfers (id, company_id, user_id, partner_id, sca_session_id, amount_cents, currency, payee_name,
                     iban, reference, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &id,
                    &caller.company_id,
                    &caller.owner.user_id,
                    &caller.owner.partner_id,
                    &session_id,
                    &t.amount.cents(),
                    &t.currency.code(),
                    &t.payee.as_str(),
                    &t.iban.as_str(),
                    &t.reference.as_ref().map(|r| r.as_str()),
                    &TRANSFER_STATUS,
                    &now.0,
                ],
            )
            .await?;
        }
        Action::Beneficiary(b) => {
            execute(
                tx,
                "INSERT INTO beneficiaries (id, company_id, sca_session_id, name, iban, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &caller.company_id, &session_id, &b.name.as_str(), &b.iban.as_str(), &now.0],
            )
            .await?;
        }
    }
    Ok(action.created(id, now)?)
}

// Passkeys and ceremonies.

pub(super) async fn linked_rows(tx: &Tx<'_>, link_hash: &SecretHash, kind: Option<CeremonyKind>) -> StoreResult<Option<LinkedRows>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS}, (SELECT name FROM partners WHERE partners.id = partner_id) FROM sca_sessions WHERE link_hash = $1"
    );
    let Some(row) = query_opt(tx, &sql, &[&&link_hash.0[..]]).await? else { return Ok(None) };
    let session = session_row(&row);
    let partner_name: String = row.get(11);
    let passkeys = passkey_rows(tx, &session.user_id).await?;
    let ceremony = match kind {
        Some(kind) => query_opt(
            tx,
            "SELECT ceremony_id, state FROM webauthn_ceremonies WHERE sca_session_id = $1 AND kind = $2",
            &[&session.id, &kind.as_str()],
        )
        .await?
        .map(|r| (kind, r.get(0), r.get(1))),
        None => None,
    };
    Ok(Some(LinkedRows { session, partner_name, passkeys, ceremony }))
}

pub(super) async fn passkey_rows(tx: &Tx<'_>, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
    let rows = query(tx, "SELECT id, passkey, sign_count FROM passkeys WHERE user_id = $1 ORDER BY created_at, id", &[&user_id]).await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

pub(super) async fn save_ceremony(tx: &Tx<'_>, session_id: &str, kind: CeremonyKind, id: i64, state: &str, now: Millis) -> StoreResult<()> {
    execute(
        tx,
        "INSERT INTO webauthn_ceremonies (sca_session_id, kind, ceremony_id, state, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sca_session_id, kind) DO UPDATE
         SET ceremony_id = excluded.ceremony_id, state = excluded.state, created_at = excluded.created_at",
        &[&session_id, &kind.as_str(), &id, &state, &now.0],
    )
    .await?;
    Ok(())
}

pub(super) async fn consume_ceremony(tx: &Tx<'_>, ceremony: &PendingCeremony) -> StoreResult<bool> {
    let deleted = execute(
        tx,
        "DELETE FROM webauthn_ceremonies WHERE sca_session_id = $1 AND kind = $2 AND ceremony_id = $3",
        &[&ceremony.session_id, &ceremony.kind.as_str(), &ceremony.id],
    )
    .await?;
    Ok(deleted == 1)
}

/// A refusal ends in a rollback: nothing of the attempt stays.
fn settle(approved: Approved) -> End<Approved> {
    if approved == Approved::Yes {
        End::Commit(approved)
    } else {
        End::Rollback(approved)
    }
}

/// Enrols the first passkey through the ceremony's session, which stays
/// waiting (a registration signs nothing of the approval).
pub(super) async fn enrol_first(
    tx: &Tx<'_>,
    ceremony: &PendingCeremony,
    enrolment: &Enrolment<'_>,
    passkey_json: &str,
    event: &AuditEvent,
) -> StoreResult<End<Approved>> {
    if !consume_ceremony(tx, ceremony).await? {
        return Ok(settle(Approved::CeremonyGone));
    }
    // Only through a session that still waits; the share lock holds a
    // concurrent decision back until this commits (read committed
    // re-checks the row a decision changed meanwhile).
    let open = query_opt(
        tx,
        "SELECT 1 FROM sca_sessions WHERE id = $1 AND state = 'waiting' AND expires_at > $2 FOR SHARE",
        &[&ceremony.session_id, &enrolment.now.0],
    )
    .await?;
    if open.is_none() {
        return Ok(settle(Approved::SessionClosed));
    }
    let first =
        execute(tx, "UPDATE users SET passkey_count = passkey_count + 1 WHERE id = $1 AND passkey_count = 0", &[&enrolment.user_id])
            .await?;
    if first == 0 {
        return Ok(settle(Approved::PasskeyExists));
    }
    let credential_id: &[u8] = enrolment.passkey.cred_id().as_ref();
    let statement = tx
        .prepare_cached(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, sign_count, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .await?;
    let inserted = tx
        .execute(
            &statement,
            &[&new_id(), &enrolment.user_id, &credential_id, &passkey_json, &i64::from(enrolment.sign_count), &enrolment.now.0],
        )
        .await;
    match inserted {
        // The failed statement aborted the transaction: it rolls back.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(settle(Approved::CredentialInUse)),
        Err(e) => return Err(e.into()),
        Ok(_) => {}
    }
    register_credential(tx, enrolment.user_id, enrolment.passkey, enrolment.attestation, enrolment.now).await?;
    if let Some(notice) = enrolment.notice {
        insert_sms(tx, notice).await?;
    }
    append_audit(tx, event, None).await?;
    Ok(settle(Approved::Yes))
}

pub(super) async fn use_and_allow(
    tx: &Tx<'_>,
    ceremony: &PendingCeremony,
    used: &PasskeyUse<'_>,
    passkey_json: &str,
    event: &AuditEvent,
) -> StoreResult<End<Approved>> {
    if !consume_ceremony(tx, ceremony).await? {
        return Ok(settle(Approved::CeremonyGone));
    }
    let count = i64::from(used.new_sign_count);
    let moved = execute(
        tx,
        "UPDATE passkeys SET passkey = $1, sign_count = $2, last_used_at = $3
         WHERE id = $4 AND (sign_count < $2 OR ($2 = 0 AND sign_count = 0))",
        &[&passkey_json, &count, &used.now.0, &used.passkey.id],
    )
    .await?;
    if moved == 0 {
        return Ok(settle(Approved::CounterNotAdvanced));
    }
    // Allow the session, keep the evidence, log it.
    if !decide(tx, &ceremony.session_id, State::Allow, used.now).await? {
        return Ok(settle(Approved::SessionClosed));
    }
    if let Some(evidence) = used.evidence {
        keep_evidence(tx, &ceremony.session_id, evidence, used.now).await?;
    }
    append_audit(tx, event, None).await?;
    Ok(settle(Approved::Yes))
}

/// Appends a passkey bound to `user_id` to the credential registry.
async fn register_credential(
    tx: &Tx<'_>,
    user_id: &str,
    passkey: &webauthn_rs::prelude::Passkey,
    attestation: Option<&str>,
    now: Millis,
) -> StoreResult<()> {
    let public_key = serde_json::to_string(passkey.get_public_key())?;
    let credential_id: &[u8] = passkey.cred_id().as_ref();
    execute(
        tx,
        "INSERT INTO credential_registry (user_id, credential_id, public_key, attestation_object, event, at)
         VALUES ($1, $2, $3, $4, 'added', $5)",
        &[&user_id, &credential_id, &public_key, &attestation, &now.0],
    )
    .await?;
    Ok(())
}

pub(super) async fn registry_of_credential(tx: &Tx<'_>, credential_id: &[u8]) -> StoreResult<Vec<RegistryEntry>> {
    let statement =
        tx.prepare_cached("SELECT user_id, public_key, event, at FROM credential_registry WHERE credential_id = $1 ORDER BY id").await?;
    let rows = tx.query(&statement, &[&credential_id]).await?;
    Ok(rows
        .iter()
        .map(|r| RegistryEntry { user_id: r.get(0), public_key: r.get(1), added: r.get::<_, String>(2) == "added", at: Millis(r.get(3)) })
        .collect())
}

/// Takes the next position of `chain`: the new row's `seq` and the hash
/// of the row before it. The head row's lock is the chain's turn, across
/// instances, until the transaction ends.
async fn advance(tx: &Tx<'_>, chain: Chain) -> StoreResult<(i64, [u8; 32])> {
    let row = query_one(tx, "UPDATE chain_heads SET seq = seq + 1 WHERE chain = $1 RETURNING seq, hash", &[&chain.table()]).await?;
    let hash: Vec<u8> = row.get(1);
    let hash = chain::hash_of(&hash).ok_or_else(|| StoreError::Corrupt(format!("the head of {} is not a hash", chain.table())))?;
    Ok((row.get(0), hash))
}

async fn move_head(tx: &Tx<'_>, chain: Chain, hash: &[u8; 32]) -> StoreResult<()> {
    execute(tx, "UPDATE chain_heads SET hash = $1 WHERE chain = $2", &[&&hash[..], &chain.table()]).await?;
    Ok(())
}

pub(super) async fn keep_evidence(tx: &Tx<'_>, session_id: &str, evidence: &str, now: Millis) -> StoreResult<()> {
    let columns = EvidenceColumns { session_id, at: now.0, evidence };
    let (seq, previous) = advance(tx, Chain::ApprovalEvidence).await?;
    let link = tx.chain_key.link(Chain::ApprovalEvidence, seq, &previous, &columns.chained());
    execute(
        tx,
        "INSERT INTO approval_evidence (session_id, at, evidence, seq, chain_hash, chain_mac) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&session_id, &now.0, &evidence, &seq, &&link.hash[..], &&link.mac[..]],
    )
    .await?;
    move_head(tx, Chain::ApprovalEvidence, &link.hash).await
}

pub(super) async fn chain_state(tx: &Tx<'_>, chain: Chain) -> StoreResult<ChainState> {
    let table = chain.table();
    let head = query_one(tx, "SELECT seq, hash FROM chain_heads WHERE chain = $1", &[&table]).await?;
    let anchor = query_opt(tx, "SELECT seq, hash, mac FROM chain_anchors WHERE chain = $1 ORDER BY seq DESC LIMIT 1", &[&table]).await?;
    // Table names from the model's enum, never from input.
    let unchained = query_one(
        tx,
        &format!(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE id > (SELECT MIN(id) FROM {table} WHERE seq IS NOT NULL))
             FROM {table} WHERE seq IS NULL"
        ),
        &[],
    )
    .await?;
    Ok(ChainState {
        head_seq: head.get(0),
        head_hash: head.get(1),
        anchor: anchor.map(|r| Anchor { seq: r.get(0), hash: r.get(1), mac: r.get(2) }),
        unchained: u64::try_from(unchained.get::<_, i64>(0)).unwrap_or(0),
        unchained_after_start: u64::try_from(unchained.get::<_, i64>(1)).unwrap_or(0),
    })
}

pub(super) async fn chain_rows(tx: &Tx<'_>, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<ChainRow>> {
    let table = chain.table();
    let columns = match chain {
        Chain::AuditEvents => AUDIT_CHAINED,
        Chain::ApprovalEvidence => EVIDENCE_CHAINED,
    };
    let rows = query(
        tx,
        &format!("SELECT id, seq, chain_hash, chain_mac, {columns} FROM {table} WHERE seq > $1 ORDER BY seq LIMIT $2"),
        &[&after, &i64::from(limit)],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let seq: i64 = r.get(1);
            let (at, content) = match chain {
                Chain::AuditEvents => {
                    let (kind, detail): (String, String) = (r.get(5), r.get(9));
                    let text = |i: usize| -> Option<String> { r.get(i) };
                    let (partner_id, user_id, session_id, client_ip, user_agent) = (text(6), text(7), text(8), text(10), text(11));
                    let columns = AuditColumns {
                        at: r.get(4),
                        kind: &kind,
                        partner_id: partner_id.as_deref(),
                        user_id: user_id.as_deref(),
                        session_id: session_id.as_deref(),
                        detail: &detail,
                        client_ip: client_ip.as_deref(),
                        user_agent: user_agent.as_deref(),
                    };
                    (columns.at, chain::canonical(seq, &columns.chained()))
                }
                Chain::ApprovalEvidence => {
                    let (session_id, at, evidence): (String, i64, String) = (r.get(4), r.get(5), r.get(6));
                    (at, chain::canonical(seq, &EvidenceColumns { session_id: &session_id, at, evidence: &evidence }.chained()))
                }
            };
            ChainRow {
                id: r.get(0),
                seq,
                at,
                content,
                hash: r.get::<_, Option<Vec<u8>>>(2).unwrap_or_default(),
                mac: r.get::<_, Option<Vec<u8>>>(3).unwrap_or_default(),
            }
        })
        .collect())
}

// Evidence.

/// Appends `event`; `session_id`, if given, names a session just created.
/// Puts an SMS in the outbox (its stored copy: see `crate::sms`).
pub(super) async fn insert_sms(tx: &Tx<'_>, sms: &OutgoingSms) -> StoreResult<()> {
    let stored = sms.stored();
    execute(
        tx,
        "INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at) VALUES ($1, $2, $3, $4, $5)",
        &[&sms.to.as_str(), &stored.body.as_ref(), &stored.link, &stored.otp, &sms.sent_at.0],
    )
    .await?;
    Ok(())
}

pub(super) async fn append_audit(tx: &Tx<'_>, event: &AuditEvent, session_id: Option<&str>) -> StoreResult<()> {
    let detail = event.detail.to_string();
    let client_ip = event.client.ip.map(|ip| ip.to_string());
    let columns = AuditColumns {
        at: event.at.0,
        kind: event.kind.as_str(),
        partner_id: event.partner_id.as_deref(),
        user_id: event.user_id.as_deref(),
        session_id: session_id.or(event.session_id.as_deref()),
        detail: &detail,
        client_ip: client_ip.as_deref(),
        user_agent: event.client.user_agent.as_deref(),
    };
    let (seq, previous) = advance(tx, Chain::AuditEvents).await?;
    let link = tx.chain_key.link(Chain::AuditEvents, seq, &previous, &columns.chained());
    execute(
        tx,
        "INSERT INTO audit_events (at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent, seq, chain_hash, chain_mac)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &columns.at,
            &columns.kind,
            &columns.partner_id,
            &columns.user_id,
            &columns.session_id,
            &columns.detail,
            &columns.client_ip,
            &columns.user_agent,
            &seq,
            &&link.hash[..],
            &&link.mac[..],
        ],
    )
    .await?;
    move_head(tx, Chain::AuditEvents, &link.hash).await
}

pub(super) async fn audit_of_session(tx: &Tx<'_>, session_id: &str) -> StoreResult<Vec<AuditRow>> {
    let rows = query(
        tx,
        "SELECT at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent FROM audit_events WHERE session_id = $1 ORDER BY id",
        &[&session_id],
    )
    .await?;
    rows.iter().map(audit_row).collect()
}

pub(super) async fn audit_log(tx: &Tx<'_>, log: &AuditQuery<'_>) -> StoreResult<Vec<AuditEntry>> {
    let (join, condition, id) = match log.scope {
        Scope::User(id) => ("", "a.user_id = $1", id),
        Scope::Company(id) => ("JOIN users u ON u.id = a.user_id", "u.company_id = $1", id),
    };
    let sql = format!(
        "SELECT a.at, a.kind, a.partner_id, a.user_id, a.session_id, a.detail, a.client_ip, a.user_agent, a.id
         FROM audit_events a {join}
         WHERE {condition} AND ($2::TEXT IS NULL OR left(a.kind, length($2::TEXT) + 1) = $2::TEXT || '.')
           AND ($3::BIGINT IS NULL OR a.id < $3::BIGINT)
         ORDER BY a.id DESC LIMIT $4"
    );
    let rows = query(tx, &sql, &[&id, &log.category, &log.before_id, &i64::from(log.limit)]).await?;
    rows.iter().map(|r| Ok(AuditEntry { id: r.get(8), row: audit_row(r)? })).collect()
}

fn audit_row(r: &Row) -> StoreResult<AuditRow> {
    let detail: String = r.get(5);
    Ok(AuditRow {
        at: Millis(r.get(0)).to_rfc3339(),
        kind: r.get(1),
        partner_id: r.get(2),
        user_id: r.get(3),
        session_id: r.get(4),
        detail: serde_json::from_str(&detail)?,
        client_ip: r.get(6),
        user_agent: r.get(7),
    })
}

pub(super) async fn evidence_of_session(tx: &Tx<'_>, session_id: &str) -> StoreResult<Option<String>> {
    Ok(query_opt(tx, "SELECT evidence FROM approval_evidence WHERE session_id = $1", &[&session_id]).await?.map(|r| r.get(0)))
}

// Ledger and SMS.

pub(super) async fn transfer_rows(tx: &Tx<'_>, company_id: &str, limit: u32) -> StoreResult<Vec<TransferRow>> {
    let rows = query(
        tx,
        "SELECT id, status, amount_cents, currency, payee_name, iban, reference, created_at
         FROM transfers WHERE company_id = $1 ORDER BY created_at DESC, id LIMIT $2",
        &[&company_id, &i64::from(limit)],
    )
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TransferRow {
            id: r.get(0),
            status: r.get(1),
            cents: r.get(2),
            currency: r.get(3),
            name: r.get(4),
            iban: r.get(5),
            reference: r.get(6),
            created_at: r.get(7),
        })
        .collect())
}

// Retention.

pub(super) async fn purge(tx: &Tx<'_>, before: &PurgeBefore) -> StoreResult<Purged> {
    let limit = i64::from(before.batch);
    let sessions = execute(
        tx,
        "DELETE FROM sca_sessions WHERE id IN (
             SELECT id FROM sca_sessions WHERE expires_at < $1 AND state <> 'consumed' LIMIT $2)",
        &[&before.operational.0, &limit],
    )
    .await?;
    execute(
        tx,
        "DELETE FROM webauthn_ceremonies WHERE (sca_session_id, kind) IN (
             SELECT sca_session_id, kind FROM webauthn_ceremonies WHERE created_at < $1 LIMIT $2)",
        &[&before.operational.0, &limit],
    )
    .await?;
    let browser_sessions = execute(
        tx,
        "DELETE FROM browser_sessions WHERE token_hash IN (
             SELECT token_hash FROM browser_sessions WHERE last_seen_at < $1 LIMIT $2)",
        &[&before.operational.0, &limit],
    )
    .await?;
    let browser_sessions = browser_sessions
        + execute(
            tx,
            "DELETE FROM trusted_devices WHERE token_hash IN (
                 SELECT token_hash FROM trusted_devices WHERE expires_at < $1 LIMIT $2)",
            &[&before.operational.0, &limit],
        )
        .await?;
    execute(
        tx,
        "DELETE FROM sign_in_ceremonies WHERE id_hash IN (
             SELECT id_hash FROM sign_in_ceremonies WHERE created_at < $1 LIMIT $2)",
        &[&before.ceremonies.0, &limit],
    )
    .await?;
    let sms = execute(
        tx,
        "DELETE FROM sms_outbox WHERE id IN (SELECT id FROM sms_outbox WHERE sent_at < $1 LIMIT $2)",
        &[&before.operational.0, &limit],
    )
    .await?;
    execute(
        tx,
        "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits WHERE tat < $1 LIMIT $2)",
        &[&before.operational.0, &limit],
    )
    .await?;
    let idempotency_keys = execute(
        tx,
        "DELETE FROM idempotency_keys WHERE (partner_id, key) IN (
             SELECT partner_id, key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
        &[&before.idempotency.0, &limit],
    )
    .await?;
    Ok(Purged { sessions, browser_sessions, sms, idempotency_keys, audit_events: 0, evidence: 0 })
}

/// The retention purge of one chain: the unchained rows of before the
/// chain, by id; then the oldest run of chained rows that is older than
/// `cutoff` and verifies (`chain::purgeable`), whole, leaving an anchor
/// MACed under the key (the position and hash verification starts from).
pub(super) async fn purge_chain(tx: &Tx<'_>, chain: Chain, cutoff: Millis, limit: u32, now: Millis) -> StoreResult<u64> {
    let table = chain.table();
    // Table names from the model's enum, never from input.
    let legacy = execute(
        tx,
        &format!("DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE seq IS NULL ORDER BY id LIMIT $2) AND at < $1"),
        &[&cutoff.0, &i64::from(limit)],
    )
    .await?;
    let anchor = query_opt(tx, "SELECT seq, hash FROM chain_anchors WHERE chain = $1 ORDER BY seq DESC LIMIT 1", &[&table]).await?;
    let (start, start_hash): (i64, Vec<u8>) = anchor.map_or((0, chain::GENESIS.to_vec()), |r| (r.get(0), r.get(1)));
    let rows = chain_rows(tx, chain, start, limit).await?;
    let aged: Vec<chain::Aged<'_>> = rows
        .iter()
        .map(|row| chain::Aged {
            seq: row.seq,
            at: row.at,
            content: &row.content,
            hash: &row.hash,
            mac_ok: tx.chain_key.verifies(chain, &row.hash, &row.mac),
        })
        .collect();
    let Some((last, hash)) = chain::purgeable(&aged, start, &start_hash, cutoff.0) else {
        return Ok(legacy);
    };
    let removed = execute(tx, &format!("DELETE FROM {table} WHERE seq > $1 AND seq <= $2"), &[&start, &last]).await?;
    if removed > 0 {
        let mac = tx.chain_key.mac(chain, &chain::anchor_digest(last, &hash));
        execute(
            tx,
            "INSERT INTO chain_anchors (chain, seq, hash, mac, at) VALUES ($1, $2, $3, $4, $5)",
            &[&table, &last, &&hash[..], &&mac[..], &now.0],
        )
        .await?;
    }
    Ok(legacy + removed)
}
