//! Companies, users, partners and their access tokens; the database's mode.

use rusqlite::{params, Connection, OptionalExtension};

use super::new_id;
use crate::clock::Millis;
use crate::model::{Caller, Owner, UserRecord};
use crate::phone::Phone;
use crate::store::{StoreError, StoreResult};
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
    let row: Option<(String, String, String, String)> = conn
        .prepare_cached("SELECT id, phone, display_name, webauthn_handle FROM users WHERE id = ?")?
        .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    row.map(|(id, phone, display_name, handle)| {
        Ok(UserRecord {
            id,
            phone: parse_phone(&phone)?,
            display_name,
            webauthn_handle: handle.parse().map_err(|_| StoreError::Corrupt("a WebAuthn user handle is not a UUID".into()))?,
        })
    })
    .transpose()
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
