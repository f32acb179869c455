//! Companies, users, partners and their access tokens; the database's mode.

use rusqlite::{params, Connection, OptionalExtension};

use super::new_id;
use uuid::Uuid;

use crate::clock::Millis;
use crate::email::Email;
use crate::model::{Caller, Owner, Role, UserRecord};
use crate::password::PasswordHash;
use crate::phone::Phone;
use crate::store::rows::{UserRow, USER_COLUMNS};
use crate::store::{CredentialsSet, StoreError, StoreResult};
use crate::token::SecretHash;

pub(super) fn caller_by_access_token(conn: &Connection, hash: &SecretHash) -> StoreResult<Option<Caller>> {
    let row = conn
        .prepare_cached(
            "SELECT t.partner_id, t.user_id, p.name, p.embed, u.company_id, u.phone
             FROM access_tokens t
             JOIN partners p ON p.id = t.partner_id
             JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        )?
        .query_row([&hash.0[..]], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?)))
        .optional()?;
    row.map(|(partner_id, user_id, partner_name, embed, company_id, phone)| {
        Ok(Caller { owner: Owner { partner_id, user_id }, partner_name, embed, company_id, phone: parse_phone(&phone)? })
    })
    .transpose()
}

pub(super) fn user(conn: &Connection, user_id: &str) -> StoreResult<Option<UserRecord>> {
    user_where(conn, "id", user_id)
}

pub(super) fn user_by_email(conn: &Connection, email: &Email) -> StoreResult<Option<UserRecord>> {
    user_where(conn, "email", email.as_str())
}

pub(super) fn user_by_webauthn_handle(conn: &Connection, handle: &Uuid) -> StoreResult<Option<UserRecord>> {
    user_where(conn, "webauthn_handle", &handle.to_string())
}

/// The user whose `column` (a unique one) is `value`.
fn user_where(conn: &Connection, column: &'static str, value: &str) -> StoreResult<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = ?");
    let row = conn.prepare_cached(&sql)?.query_row([value], user_row).optional()?;
    row.map(UserRow::parse).transpose()
}

/// A row of `SELECT {USER_COLUMNS}`.
pub(super) fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        id: r.get(0)?,
        phone: r.get(1)?,
        display_name: r.get(2)?,
        webauthn_handle: r.get(3)?,
        email: r.get(4)?,
        password_hash: r.get(5)?,
        role: r.get(6)?,
        company_id: r.get(7)?,
    })
}

/// Gives a user sign-in credentials; the email stays unique across users.
pub(super) fn set_credentials(
    tx: &Connection,
    user_id: &str,
    email: &Email,
    password: &PasswordHash,
    role: Role,
) -> StoreResult<CredentialsSet> {
    let updated = tx.execute(
        "UPDATE users SET email = ?, password_hash = ?, role = ? WHERE id = ?",
        params![email.as_str(), password.as_str(), role.as_str(), user_id],
    );
    match updated {
        Err(e) if super::is_unique_violation(&e) => Ok(CredentialsSet::EmailInUse),
        other => other.map(|_| CredentialsSet::Yes).map_err(Into::into),
    }
}

/// Unique by name (an index, not a check): safe with concurrent writers.
pub(super) fn ensure_company(tx: &Connection, name: &str, now: Millis) -> StoreResult<String> {
    tx.execute(
        "INSERT INTO companies (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
        params![new_id(), name, now.0],
    )?;
    Ok(tx.query_row("SELECT id FROM companies WHERE name = ?", [name], |r| r.get(0))?)
}

pub(super) fn ensure_user(tx: &Connection, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> StoreResult<String> {
    tx.execute(
        "INSERT INTO users (id, company_id, phone, display_name, webauthn_handle, created_at)
         VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING",
        params![new_id(), company_id, phone.as_str(), display_name, uuid::Uuid::new_v4().to_string(), now.0],
    )?;
    Ok(tx.query_row("SELECT id FROM users WHERE phone = ?", [phone.as_str()], |r| r.get(0))?)
}

pub(super) fn ensure_partner(tx: &Connection, name: &str, embed: bool, now: Millis) -> StoreResult<String> {
    tx.execute(
        "INSERT INTO partners (id, name, embed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
        params![new_id(), name, embed, now.0],
    )?;
    Ok(tx.query_row("SELECT id FROM partners WHERE name = ?", [name], |r| r.get(0))?)
}

pub(super) fn insert_access_token(tx: &Connection, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO access_tokens (token_hash, partner_id, user_id, created_at) VALUES (?, ?, ?, ?)",
        params![&hash.0[..], partner_id, user_id, now.0],
    )?;
    Ok(())
}

pub(super) fn claim_mode(tx: &Connection, mode: &str) -> StoreResult<String> {
    tx.execute("INSERT INTO meta (key, value) VALUES ('mode', ?) ON CONFLICT (key) DO NOTHING", [mode])?;
    Ok(tx.query_row("SELECT value FROM meta WHERE key = 'mode'", [], |r| r.get(0))?)
}

fn parse_phone(text: &str) -> StoreResult<Phone> {
    Phone::parse(text).map_err(|_| StoreError::Corrupt("a phone number is not E.164".into()))
}
