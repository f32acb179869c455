//! A company's policy, its users' factors (the admins' report) and the
//! admins' removals.

use rusqlite::{params, Connection, OptionalExtension};

use super::{audit, browser_sessions, sms};
use crate::clock::Millis;
use crate::model::{AuditEvent, Company, PasskeySummary, TotpFactor, TwoFactorPolicy, UserRecord};
use crate::store::rows::{backed_up, USER_COLUMNS};
use crate::store::{Removal, Removed, Scope, StoreError, StoreResult};

pub(super) fn company(conn: &Connection, company_id: &str) -> StoreResult<Option<Company>> {
    let row: Option<(String, String, String)> = conn
        .prepare_cached("SELECT id, name, two_factor FROM companies WHERE id = ?")?
        .query_row([company_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(id, name, policy)| {
        let two_factor =
            TwoFactorPolicy::parse(&policy).ok_or_else(|| StoreError::Corrupt(format!("unknown two-factor policy {policy:?}")))?;
        Ok(Company { id, name, two_factor })
    })
    .transpose()
}

pub(super) fn set_policy(tx: &Connection, company_id: &str, policy: TwoFactorPolicy, event: &AuditEvent) -> StoreResult<()> {
    tx.prepare_cached("UPDATE companies SET two_factor = ? WHERE id = ?")?.execute(params![policy.as_str(), company_id])?;
    audit::append(tx, event)
}

pub(super) fn users(conn: &Connection, company_id: &str) -> StoreResult<Vec<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE company_id = ? ORDER BY display_name, id");
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map([company_id], super::directory::user_row)?;
    rows.map(|row| row?.parse()).collect()
}

pub(super) fn totp_factors(conn: &Connection, company_id: &str) -> StoreResult<Vec<(String, TotpFactor)>> {
    let mut statement = conn.prepare_cached(
        "SELECT t.user_id, t.sealed_key, t.created_at, t.confirmed_at, t.last_used_at, t.locked_until, t.last_step, t.next_created_at
         FROM totp_factors t JOIN users u ON u.id = t.user_id WHERE u.company_id = ?",
    )?;
    let rows = statement.query_map([company_id], |r| {
        Ok((
            r.get(0)?,
            TotpFactor {
                sealed_key: r.get(1)?,
                created_at: Millis(r.get(2)?),
                confirmed_at: r.get::<_, Option<i64>>(3)?.map(Millis),
                last_used_at: r.get::<_, Option<i64>>(4)?.map(Millis),
                locked_until: r.get::<_, Option<i64>>(5)?.map(Millis),
                last_step: r.get(6)?,
                replacing_since: r.get::<_, Option<i64>>(7)?.map(Millis),
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn passkeys(conn: &Connection, scope: Scope<'_>) -> StoreResult<Vec<PasskeySummary>> {
    let (join, condition) = match scope {
        Scope::User(_) => ("", "p.user_id = ?1"),
        Scope::Company(_) => ("JOIN users u ON u.id = p.user_id", "u.company_id = ?1"),
    };
    let sql = format!(
        "SELECT p.id, p.user_id, p.name, p.created_at, p.last_used_at, p.passkey
         FROM passkeys p {join} WHERE {condition} ORDER BY p.created_at, p.id"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map([audit::scope_id(scope)], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, Option<i64>>(4)?, r.get::<_, String>(5)?))
    })?;
    rows.map(|row| {
        let (id, user_id, name, created_at, last_used_at, passkey) = row?;
        Ok(PasskeySummary {
            id,
            user_id,
            name,
            created_at: Millis(created_at),
            last_used_at: last_used_at.map(Millis),
            backed_up: backed_up(&passkey)?,
        })
    })
    .collect()
}

pub(super) fn rename_passkey(tx: &Connection, user_id: &str, passkey_id: &str, name: &str) -> StoreResult<bool> {
    Ok(tx.prepare_cached("UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?")?.execute([name, passkey_id, user_id])? == 1)
}

pub(super) fn remove_totp(tx: &Connection, removal: &Removal<'_>) -> StoreResult<Removed> {
    let user_id = removal.user_id;
    // SQLite runs one write at a time: the count and the delete are one step.
    let removed = tx
        .prepare_cached(
            "DELETE FROM totp_factors WHERE user_id = ?1
               AND (NOT ?2 OR (SELECT passkey_count FROM users WHERE id = ?1) > 0)",
        )?
        .execute(params![user_id, removal.keep_one])?
        == 1;
    if !removed {
        let exists = tx.prepare_cached("SELECT 1 FROM totp_factors WHERE user_id = ?")?.exists([user_id])?;
        return Ok(if exists { Removed::LastFactor } else { Removed::Absent });
    }
    tx.prepare_cached("DELETE FROM recovery_codes WHERE user_id = ?")?.execute([user_id])?;
    removed_with(tx, removal)
}

pub(super) fn remove_passkey(tx: &Connection, passkey_id: &str, removal: &Removal<'_>) -> StoreResult<Removed> {
    let user_id = removal.user_id;
    let removed: Option<Vec<u8>> = tx
        .prepare_cached(
            "DELETE FROM passkeys WHERE id = ?1 AND user_id = ?2
               AND (NOT ?3 OR (SELECT passkey_count FROM users WHERE id = ?2)
                   + (SELECT COUNT(*) FROM totp_factors WHERE user_id = ?2 AND confirmed_at IS NOT NULL) > 1)
             RETURNING credential_id",
        )?
        .query_row(params![passkey_id, user_id, removal.keep_one], |r| r.get(0))
        .optional()?;
    let Some(credential_id) = removed else {
        let exists = tx.prepare_cached("SELECT 1 FROM passkeys WHERE id = ? AND user_id = ?")?.exists([passkey_id, user_id])?;
        return Ok(if exists { Removed::LastFactor } else { Removed::Absent });
    };
    tx.prepare_cached("UPDATE users SET passkey_count = passkey_count - 1 WHERE id = ? AND passkey_count > 0")?.execute([user_id])?;
    super::passkeys::register_removal(tx, user_id, &credential_id, removal.notice.audit.at)?;
    removed_with(tx, removal)
}

/// What goes with a removed factor: the user's other sessions and trusted
/// browsers; the audit event and the SMS notice.
fn removed_with(tx: &Connection, removal: &Removal<'_>) -> StoreResult<Removed> {
    browser_sessions::end_others(tx, removal.user_id, removal.keep_session)?;
    sms::insert(tx, removal.notice.sms)?;
    audit::append(tx, removal.notice.audit)?;
    Ok(Removed::Yes)
}
