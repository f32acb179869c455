//! Companies, users, partners and their access tokens.

use sqlx::Row;

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
        let row = sqlx::query(
            "SELECT t.partner_id, t.user_id, p.name, p.embed, u.company_id, u.phone
             FROM access_tokens t
             JOIN partners p ON p.id = t.partner_id
             JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = ? AND t.revoked_at IS NULL",
        )
        .bind(&hash.0[..])
        .fetch_optional(self.reader())
        .await?;
        row.map(|r| {
            Ok(Caller {
                owner: Owner { partner_id: r.try_get(0)?, user_id: r.try_get(1)? },
                partner_name: r.try_get(2)?,
                embed: r.try_get(3)?,
                company_id: r.try_get(4)?,
                phone: parse_phone(r.try_get(5)?)?,
            })
        })
        .transpose()
    }

    pub async fn user(&self, user_id: &str) -> Result<UserRecord> {
        let r = sqlx::query("SELECT id, phone, display_name, webauthn_handle FROM users WHERE id = ?")
            .bind(user_id)
            .fetch_one(self.reader())
            .await?;
        let handle: String = r.try_get(3)?;
        Ok(UserRecord {
            id: r.try_get(0)?,
            phone: parse_phone(r.try_get(1)?)?,
            display_name: r.try_get(2)?,
            webauthn_handle: handle
                .parse()
                .map_err(|_| Error::Internal("stored WebAuthn user handle is not a UUID".into()))?,
        })
    }

    /// Finds or creates the company by name; returns its id.
    pub async fn ensure_company(&self, name: &str, now: Millis) -> Result<String> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO companies (id, name, created_at) SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM companies WHERE name = ?)")
            .bind(new_id())
            .bind(name)
            .bind(now.0)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let id = sqlx::query_scalar("SELECT id FROM companies WHERE name = ?").bind(name).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Finds or creates the user with this phone number; returns its id.
    pub async fn ensure_user(&self, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> Result<String> {
        let mut tx = self.write().await?;
        sqlx::query(
            "INSERT INTO users (id, company_id, phone, display_name, webauthn_handle, created_at)
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (phone) DO NOTHING",
        )
        .bind(new_id())
        .bind(company_id)
        .bind(phone.as_str())
        .bind(display_name)
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(now.0)
        .execute(&mut *tx)
        .await?;
        let id = sqlx::query_scalar("SELECT id FROM users WHERE phone = ?").bind(phone.as_str()).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Finds or creates the partner by name; returns its id.
    pub async fn ensure_partner(&self, name: &str, embed: bool, now: Millis) -> Result<String> {
        let mut tx = self.write().await?;
        sqlx::query("INSERT INTO partners (id, name, embed, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING")
            .bind(new_id())
            .bind(name)
            .bind(embed)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        let id = sqlx::query_scalar("SELECT id FROM partners WHERE name = ?").bind(name).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn insert_access_token(&self, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> Result<()> {
        sqlx::query("INSERT INTO access_tokens (token_hash, partner_id, user_id, created_at) VALUES (?, ?, ?, ?)")
            .bind(&hash.0[..])
            .bind(partner_id)
            .bind(user_id)
            .bind(now.0)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}

fn parse_phone(text: String) -> Result<Phone> {
    Phone::parse(&text).map_err(|_| Error::Internal("stored phone number is not E.164".into()))
}
