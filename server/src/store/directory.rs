//! Companies, users, partners and their access tokens.

use rusqlite::{params, OptionalExtension};

use super::{new_id, Store};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::phone::Phone;
use crate::sca::Owner;
use crate::token::SecretHash;

/// The authenticated side of a partner request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub owner: Owner,
    pub partner_name: String,
    pub embed: bool,
    pub company_id: String,
    pub phone: Phone,
}

#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: String,
    pub phone: Phone,
    pub display_name: String,
    pub webauthn_handle: uuid::Uuid,
}

impl Store {
    pub async fn caller_by_access_token(&self, hash: &SecretHash) -> Result<Option<Caller>> {
        let row = self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT t.partner_id, t.user_id, p.name, p.embed, u.company_id, u.phone
                     FROM access_tokens t
                     JOIN partners p ON p.id = t.partner_id
                     JOIN users u ON u.id = t.user_id
                     WHERE t.token_hash = ? AND t.revoked_at IS NULL",
                )?
                .query_row([&hash.0[..]], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get::<_, String>(5)?))
                })
                .optional()?)
        }).await?;
        row.map(|(partner_id, user_id, partner_name, embed, company_id, phone)| {
            Ok(Caller { owner: Owner { partner_id, user_id }, partner_name, embed, company_id, phone: parse_phone(&phone)? })
        })
        .transpose()
    }

    pub async fn user(&self, user_id: &str) -> Result<UserRecord> {
        let (id, phone, display_name, handle): (String, String, String, String) = self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT id, phone, display_name, webauthn_handle FROM users WHERE id = ?")?
                .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?)
        }).await?;
        Ok(UserRecord {
            id,
            phone: parse_phone(&phone)?,
            display_name,
            webauthn_handle: handle
                .parse()
                .map_err(|_| Error::Internal("stored WebAuthn user handle is not a UUID".into()))?,
        })
    }

    /// Finds or creates the company by name; returns its id.
    pub async fn ensure_company(&self, name: &str, now: Millis) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO companies (id, name, created_at) SELECT ?1, ?2, ?3
                 WHERE NOT EXISTS (SELECT 1 FROM companies WHERE name = ?2)",
                params![new_id(), name, now.0],
            )?;
            Ok(tx.query_row("SELECT id FROM companies WHERE name = ?", [name], |r| r.get(0))?)
        })
        .await
    }

    /// Finds or creates the user with this phone number; returns its id.
    pub async fn ensure_user(&self, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, company_id, phone, display_name, webauthn_handle, created_at)
                 VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING",
                params![new_id(), company_id, phone.as_str(), display_name, uuid::Uuid::new_v4().to_string(), now.0],
            )?;
            Ok(tx.query_row("SELECT id FROM users WHERE phone = ?", [phone.as_str()], |r| r.get(0))?)
        })
        .await
    }

    /// Finds or creates the partner by name; returns its id.
    pub async fn ensure_partner(&self, name: &str, embed: bool, now: Millis) -> Result<String> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO partners (id, name, embed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                params![new_id(), name, embed, now.0],
            )?;
            Ok(tx.query_row("SELECT id FROM partners WHERE name = ?", [name], |r| r.get(0))?)
        })
        .await
    }

    pub async fn insert_access_token(&self, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO access_tokens (token_hash, partner_id, user_id, created_at) VALUES (?, ?, ?, ?)",
                params![&hash.0[..], partner_id, user_id, now.0],
            )?;
            Ok(())
        })
        .await
    }
}

fn parse_phone(text: &str) -> Result<Phone> {
    Phone::parse(text).map_err(|_| Error::Internal("stored phone number is not E.164".into()))
}
