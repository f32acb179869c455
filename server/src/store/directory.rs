//! The directory: companies, users, partners and their access tokens, and
//! the database's mode; each operation written once for both databases.
//! A find-or-create is an insert that does nothing on a duplicate name
//! (a unique index, not a check), then a read: safe with concurrent
//! writers on either database.

use uuid::Uuid;

use super::rows::{UserRow, USER_COLUMNS};
use super::sql::{End, Kind, Row, Tx};
use super::{run, CredentialsSet, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::email::Email;
use crate::model::{Caller, Owner, Role, UserRecord};
use crate::password::PasswordHash;
use crate::phone::Phone;
use crate::token::SecretHash;

impl Store {
    /// The partner and user an unrevoked access token stands for.
    pub async fn caller_by_access_token(&self, hash: &SecretHash) -> StoreResult<Option<Caller>> {
        // Every partner request starts here: it waits for no fsync (the
        // request's answer waits for its own writes'), and tokens are
        // written only by the operator's commands.
        run!(self, Kind::PeekOne, |tx| caller_by_access_token(tx, hash))
    }

    /// The user with this id.
    pub async fn user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        run!(self, Kind::Read, |tx| user_where(tx, "id", user_id))
    }

    /// The user who signs in with this email.
    pub async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>> {
        run!(self, Kind::Read, |tx| user_where(tx, "email", email.as_str()))
    }

    /// The user whose WebAuthn user handle this is.
    pub async fn user_by_webauthn_handle(&self, handle: &Uuid) -> StoreResult<Option<UserRecord>> {
        let handle = handle.to_string();
        run!(self, Kind::Read, |tx| user_where(tx, "webauthn_handle", &handle))
    }

    /// Finds or creates the company by name; returns its id.
    pub async fn ensure_company(&self, name: &str, now: Millis) -> StoreResult<String> {
        run!(self, Kind::Durable, |tx| ensure_company(tx, name, now))
    }

    /// Finds or creates the user with this phone number (in `company_id`
    /// if created); returns its id.
    pub async fn ensure_user(&self, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> StoreResult<String> {
        run!(self, Kind::Durable, |tx| ensure_user(tx, company_id, phone, display_name, now))
    }

    /// Gives the user an email, a password and a role; an email another
    /// user has is refused (`EmailInUse`), and nothing changes.
    pub async fn set_credentials(&self, user_id: &str, email: &Email, password: &PasswordHash, role: Role) -> StoreResult<CredentialsSet> {
        run!(self, Kind::Durable, |tx| set_credentials(tx, user_id, email, password, role))
    }

    /// Finds or creates the partner by name; returns its id.
    pub async fn ensure_partner(&self, name: &str, embed: bool, now: Millis) -> StoreResult<String> {
        run!(self, Kind::Durable, |tx| ensure_partner(tx, name, embed, now))
    }

    /// Stores an access token (its hash) of the partner for the user.
    pub async fn insert_access_token(&self, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> StoreResult<()> {
        run!(self, Kind::Durable, |tx| insert_access_token(tx, hash, partner_id, user_id, now))
    }

    /// Records `mode` as the database's mode unless one is recorded;
    /// returns the recorded one.
    pub async fn claim_mode(&self, mode: &str) -> StoreResult<String> {
        run!(self, Kind::Durable, |tx| claim_mode(tx, mode))
    }
}

async fn caller_by_access_token(tx: &impl Tx, hash: &SecretHash) -> StoreResult<End<Option<Caller>>> {
    let row = tx
        .query_opt(
            "SELECT t.partner_id, t.user_id, p.name, p.embed, u.company_id, u.phone
             FROM access_tokens t JOIN partners p ON p.id = t.partner_id JOIN users u ON u.id = t.user_id
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
            &[hash.0[..].into()],
        )
        .await?;
    let caller = row
        .map(|r| {
            let phone: String = r.get(5)?;
            Ok::<_, StoreError>(Caller {
                owner: Owner { partner_id: r.get(0)?, user_id: r.get(1)? },
                partner_name: r.get(2)?,
                embed: r.get(3)?,
                company_id: r.get(4)?,
                phone: Phone::parse(&phone).map_err(|_| StoreError::Corrupt("a phone number is not E.164".into()))?,
            })
        })
        .transpose()?;
    Ok(End::Commit(caller))
}

/// The user whose `column` (a unique one, never from input) is `value`.
async fn user_where(tx: &impl Tx, column: &'static str, value: &str) -> StoreResult<End<Option<UserRecord>>> {
    let row = tx.query_opt(&format!("SELECT {USER_COLUMNS} FROM users WHERE {column} = $1"), &[value.into()]).await?;
    Ok(End::Commit(row.as_ref().map(user_record).transpose()?))
}

/// A row of `SELECT {USER_COLUMNS}`.
pub(super) fn user_record(r: &Row) -> StoreResult<UserRecord> {
    UserRow {
        id: r.get(0)?,
        phone: r.get(1)?,
        display_name: r.get(2)?,
        webauthn_handle: r.get(3)?,
        email: r.get(4)?,
        password_hash: r.get(5)?,
        role: r.get(6)?,
        company_id: r.get(7)?,
    }
    .parse()
}

async fn ensure_company(tx: &impl Tx, name: &str, now: Millis) -> StoreResult<End<String>> {
    tx.execute(
        "INSERT INTO companies (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        &[new_id().as_str().into(), name.into(), now.0.into()],
    )
    .await?;
    Ok(End::Commit(tx.query_one("SELECT id FROM companies WHERE name = $1", &[name.into()]).await?.get(0)?))
}

async fn ensure_user(tx: &impl Tx, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> StoreResult<End<String>> {
    let handle = Uuid::new_v4().to_string();
    tx.execute(
        "INSERT INTO users (id, company_id, phone, display_name, webauthn_handle, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (phone) DO NOTHING",
        &[new_id().as_str().into(), company_id.into(), phone.as_str().into(), display_name.into(), handle.as_str().into(), now.0.into()],
    )
    .await?;
    Ok(End::Commit(tx.query_one("SELECT id FROM users WHERE phone = $1", &[phone.as_str().into()]).await?.get(0)?))
}

/// The email stays unique across users (an index): a duplicate is
/// refused by the database, not by a check a concurrent writer could pass.
async fn set_credentials(
    tx: &impl Tx,
    user_id: &str,
    email: &Email,
    password: &PasswordHash,
    role: Role,
) -> StoreResult<End<CredentialsSet>> {
    let set = tx
        .execute(
            "UPDATE users SET email = $1, password_hash = $2, role = $3 WHERE id = $4",
            &[email.as_str().into(), password.as_str().into(), role.as_str().into(), user_id.into()],
        )
        .await;
    match set {
        // On PostgreSQL the failed statement aborted the transaction.
        Err(StoreError::Duplicate(_)) => Ok(End::Rollback(CredentialsSet::EmailInUse)),
        other => other.map(|_| End::Commit(CredentialsSet::Yes)),
    }
}

async fn ensure_partner(tx: &impl Tx, name: &str, embed: bool, now: Millis) -> StoreResult<End<String>> {
    tx.execute(
        "INSERT INTO partners (id, name, embed, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
        &[new_id().as_str().into(), name.into(), embed.into(), now.0.into()],
    )
    .await?;
    Ok(End::Commit(tx.query_one("SELECT id FROM partners WHERE name = $1", &[name.into()]).await?.get(0)?))
}

async fn insert_access_token(tx: &impl Tx, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> StoreResult<End<()>> {
    tx.execute(
        "INSERT INTO access_tokens (token_hash, partner_id, user_id, created_at) VALUES ($1, $2, $3, $4)",
        &[hash.0[..].into(), partner_id.into(), user_id.into(), now.0.into()],
    )
    .await?;
    Ok(End::Commit(()))
}

async fn claim_mode(tx: &impl Tx, mode: &str) -> StoreResult<End<String>> {
    tx.execute("INSERT INTO meta (key, value) VALUES ('mode', $1) ON CONFLICT (key) DO NOTHING", &[mode.into()]).await?;
    Ok(End::Commit(tx.query_one("SELECT value FROM meta WHERE key = 'mode'", &[]).await?.get(0)?))
}

/// A row id: UUIDv7, time-ordered, so that new rows and their index
/// entries land on the same few pages instead of random ones.
fn new_id() -> String {
    Uuid::now_v7().to_string()
}
