//! Paired phones, each operation written once for both databases: the
//! pairing's registration ceremony (taken once), the pairing itself (one
//! phone per user, its passkey in the credential registry, its device
//! credential stored as a hash), the look-ups by user and by device
//! credential, and the unpairing.

use super::rows::backed_up;
use super::sql::{End, Kind, Row, Tx};
use super::{audit, outbox, passkeys, phone_confirmations, run, FactorNotice, Store, StoreError, StoreResult};
use crate::clock::Millis;
use crate::model::{AuditEvent, ConfirmationPurpose, PairedPhone, StoredPasskey, UnpairedBy};
use crate::token::SecretHash;

/// A phone to pair.
#[derive(Debug)]
pub struct NewPairedPhone<'a> {
    pub user_id: &'a str,
    pub passkey: &'a webauthn_rs::prelude::Passkey,
    /// The phone's attestation object (base64url), for the registry.
    pub attestation: Option<&'a str>,
    /// The hash of the phone's device credential.
    pub device_hash: &'a SecretHash,
    pub now: Millis,
    /// The paired phone this one replaces, if one is paired.
    pub replacing: Option<Replacing<'a>>,
}

/// A paired phone to end in the pairing of its replacement: only with a
/// confirmation it allowed for the session pairing the new one, used in
/// the same transaction.
#[derive(Debug)]
pub struct Replacing<'a> {
    pub phone_id: &'a str,
    /// The browser session pairing the new phone.
    pub session: &'a SecretHash,
    /// The old phone's `factor.removed`.
    pub audit: &'a AuditEvent,
}

/// The answer of [`Store::pair_phone`]; nothing is stored but on `Paired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pairing {
    /// Paired: the phone's id.
    Paired(String),
    /// The user has a paired phone already.
    AlreadyPaired,
    /// The passkey is one of an account's already.
    CredentialInUse,
}

const PHONE_COLUMNS: &str = "id, user_id, passkey, sign_count, paired_at, last_used_at, push_since";

impl Store {
    /// Saves the pairing ceremony of the browser session, replacing one.
    pub async fn save_pairing_ceremony(&self, session: &SecretHash, state: &str, now: Millis) -> StoreResult<()> {
        // A ceremony lost to a power cut is started again: relaxed.
        run!(self, Kind::Relaxed, |tx| async {
            tx.execute(
                "INSERT INTO pairing_ceremonies (session_hash, state, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (session_hash) DO UPDATE SET state = $2, created_at = $3",
                &[session.0[..].into(), state.into(), now.0.into()],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    /// Takes (deletes) the session's pairing ceremony, if started at or
    /// after `not_before`: each challenge answers once.
    pub async fn take_pairing_ceremony(&self, session: &SecretHash, not_before: Millis) -> StoreResult<Option<String>> {
        // Durable: a taken ceremony must not come back after a power cut.
        run!(self, Kind::Durable, |tx| async {
            let row = tx
                .query_opt("DELETE FROM pairing_ceremonies WHERE session_hash = $1 RETURNING state, created_at", &[session.0[..].into()])
                .await?;
            let Some(row) = row else { return Ok(End::Commit(None)) };
            let started: i64 = row.get(1)?;
            Ok(End::Commit((started >= not_before.0).then(|| row.get(0)).transpose()?))
        })
    }

    /// Pairs a phone, with its notice (audit event, SMS), unless the user
    /// has one paired already or the passkey is an account's.
    pub async fn pair_phone(&self, new: NewPairedPhone<'_>, notice: FactorNotice<'_>) -> StoreResult<Pairing> {
        let json = serde_json::to_string(new.passkey)?;
        run!(self, Kind::Durable, |tx| pair(tx, &new, &json, &notice))
    }

    /// The user's paired phone, if one is paired.
    pub async fn paired_phone_of_user(&self, user_id: &str) -> StoreResult<Option<PairedPhone>> {
        run!(self, Kind::Read, |tx| async {
            let sql = format!("SELECT {PHONE_COLUMNS} FROM paired_phones WHERE user_id = $1 AND ended_at IS NULL");
            let row = tx.query_opt(&sql, &[user_id.into()]).await?;
            Ok(End::Commit(row.as_ref().map(phone).transpose()?))
        })
    }

    /// The paired phone whose device credential hashes to `device_hash`;
    /// `None` once it is unpaired.
    pub async fn paired_phone_by_device(&self, device_hash: &SecretHash) -> StoreResult<Option<PairedPhone>> {
        run!(self, Kind::Read, |tx| async {
            let sql = format!("SELECT {PHONE_COLUMNS} FROM paired_phones WHERE device_hash = $1 AND ended_at IS NULL");
            let row = tx.query_opt(&sql, &[device_hash.0[..].into()]).await?;
            Ok(End::Commit(row.as_ref().map(phone).transpose()?))
        })
    }

    /// The paired phones of a company's users.
    pub async fn paired_phones_of_company(&self, company_id: &str) -> StoreResult<Vec<PairedPhone>> {
        run!(self, Kind::Read, |tx| async {
            let rows = tx
                .query(
                    "SELECT p.id, p.user_id, p.passkey, p.sign_count, p.paired_at, p.last_used_at, p.push_since
                     FROM paired_phones p JOIN users u ON u.id = p.user_id
                     WHERE u.company_id = $1 AND p.ended_at IS NULL",
                    &[company_id.into()],
                )
                .await?;
            Ok(End::Commit(rows.iter().map(phone).collect::<StoreResult<_>>()?))
        })
    }

    /// Ends the pairing `phone_id` (its passkey and device credential stop
    /// working), with its notice; false if it had ended.
    pub async fn unpair_phone(&self, phone_id: &str, by: &UnpairedBy, now: Millis, notice: FactorNotice<'_>) -> StoreResult<bool> {
        run!(self, Kind::Durable, |tx| unpair(tx, phone_id, by, now, &notice))
    }
}

async fn pair(tx: &impl Tx, new: &NewPairedPhone<'_>, passkey_json: &str, notice: &FactorNotice<'_>) -> StoreResult<End<Pairing>> {
    let paired = tx.query_opt("SELECT id FROM paired_phones WHERE user_id = $1 AND ended_at IS NULL", &[new.user_id.into()]).await?;
    if let Some(row) = paired {
        let live: String = row.get(0)?;
        let Some(replacing) = new.replacing.as_ref().filter(|r| r.phone_id == live) else {
            return Ok(End::Rollback(Pairing::AlreadyPaired));
        };
        if !replace(tx, replacing, new.now).await? {
            return Ok(End::Rollback(Pairing::AlreadyPaired));
        }
    }
    let credential_id: &[u8] = new.passkey.cred_id().as_ref();
    let taken = tx
        .query_opt(
            "SELECT 1 FROM passkeys WHERE credential_id = $1 UNION ALL SELECT 1 FROM paired_phones WHERE credential_id = $1",
            &[credential_id.into()],
        )
        .await?;
    if taken.is_some() {
        return Ok(End::Rollback(Pairing::CredentialInUse));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let inserted = tx
        .execute(
            "INSERT INTO paired_phones (id, user_id, credential_id, passkey, sign_count, device_hash, paired_at)
             VALUES ($1, $2, $3, $4, 0, $5, $6)",
            &[
                id.as_str().into(),
                new.user_id.into(),
                credential_id.into(),
                passkey_json.into(),
                new.device_hash.0[..].into(),
                new.now.0.into(),
            ],
        )
        .await;
    match inserted {
        // Checked above: only a pairing of the same user committed
        // meanwhile (on another connection) collides here.
        Err(StoreError::Duplicate(_)) => return Ok(End::Rollback(Pairing::AlreadyPaired)),
        other => other?,
    };
    passkeys::register(tx, new.user_id, new.passkey, new.attestation, new.now).await?;
    outbox::insert(tx, notice.sms).await?;
    audit::append(tx, notice.audit, None).await?;
    Ok(End::Commit(Pairing::Paired(id)))
}

/// Uses the old phone's confirmation and ends it (by the phone: its
/// passkey approved this), with its audit event; false if either is gone.
async fn replace(tx: &impl Tx, replacing: &Replacing<'_>, now: Millis) -> StoreResult<bool> {
    let purpose = ConfirmationPurpose::ReplacePhone;
    if !phone_confirmations::use_allowed(tx, replacing.session, Some(replacing.phone_id), purpose, now).await? {
        return Ok(false);
    }
    if !end_pairing(tx, replacing.phone_id, &UnpairedBy::Phone, now).await? {
        return Ok(false);
    }
    audit::append(tx, replacing.audit, None).await?;
    Ok(true)
}

/// Ends the pairing `phone_id` if it is live, and forgets its push
/// subscription (a capability to push to that browser, of no use once
/// the pairing ended); false if it had ended already.
async fn end_pairing(tx: &impl Tx, phone_id: &str, by: &UnpairedBy, now: Millis) -> StoreResult<bool> {
    let ended = tx
        .execute(
            "UPDATE paired_phones SET ended_at = $2, ended_by = $3, push_endpoint = NULL, push_p256dh = NULL, push_auth = NULL, push_since = NULL
             WHERE id = $1 AND ended_at IS NULL",
            &[phone_id.into(), now.0.into(), by.as_str().into()],
        )
        .await?;
    Ok(ended == 1)
}

async fn unpair(tx: &impl Tx, phone_id: &str, by: &UnpairedBy, now: Millis, notice: &FactorNotice<'_>) -> StoreResult<End<bool>> {
    let ended = end_pairing(tx, phone_id, by, now).await?;
    if ended {
        outbox::insert(tx, notice.sms).await?;
        audit::append(tx, notice.audit, None).await?;
    }
    Ok(End::Commit(ended))
}

fn phone(row: &Row) -> StoreResult<PairedPhone> {
    let json: String = row.get(2)?;
    let passkey = serde_json::from_str(&json)?;
    Ok(PairedPhone {
        id: row.get(0)?,
        user_id: row.get(1)?,
        synced: backed_up(&json)?,
        passkey: StoredPasskey { id: row.get(0)?, passkey, sign_count: row.get(3)? },
        paired_at: Millis(row.get(4)?),
        last_used_at: row.get::<Option<i64>>(5)?.map(Millis),
        notifications: row.get::<Option<i64>>(6)?.is_some(),
    })
}
