//! Passkeys and the WebAuthn ceremonies bound to SCA sessions, each
//! operation written once for both databases: the first passkey enrolled
//! through an approval link, a passkey's use that allows a session, a
//! passkey added from the account area, the credential registry.
//!
//! A refusal ends in a rollback: nothing of the attempt stays (the
//! ceremony it consumed included), on both databases.

use webauthn_rs::prelude::Passkey;

use super::rows::{parse_passkeys, PasskeyRow};
use super::sql::{Dialect, End, Kind, Tx};
use super::{
    audit, evidence, outbox, run, sessions, Approved, Enrolment, FactorNotice, NewPasskey, PasskeyUse, Store, StoreError, StoreResult,
};
use crate::clock::Millis;
use crate::model::{AuditEvent, CeremonyKind, PendingCeremony, RegistryEntry, State, StoredPasskey};

impl Store {
    /// The user's passkeys, oldest first.
    pub async fn passkeys_of_user(&self, user_id: &str) -> StoreResult<Vec<StoredPasskey>> {
        let rows = run!(self, Kind::ReadOne, |tx| async { rows_of_user(tx, user_id).await.map(End::Commit) })?;
        parse_passkeys(rows)
    }

    /// Saves a ceremony's state for the session, replacing the one of the
    /// same kind (a newer start wins; the older one can no longer finish).
    pub async fn save_ceremony(&self, session_id: &str, kind: CeremonyKind, state_json: &str, now: Millis) -> StoreResult<()> {
        let id: i64 = rand::random();
        // Lost to a power cut, the ceremony only has to start again; the
        // answer is its own challenge.
        run!(self, Kind::IndependentOne, |tx| async {
            tx.execute(
                "INSERT INTO webauthn_ceremonies (sca_session_id, kind, ceremony_id, state, created_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (sca_session_id, kind) DO UPDATE
                 SET ceremony_id = excluded.ceremony_id, state = excluded.state, created_at = excluded.created_at",
                &[session_id.into(), kind.as_str().into(), id.into(), state_json.into(), now.0.into()],
            )
            .await?;
            Ok(End::Commit(()))
        })
    }

    /// Burns a ceremony that failed (a bad signature, a timeout), logged.
    pub async fn discard_ceremony(&self, ceremony: &PendingCeremony, audit: &AuditEvent) -> StoreResult<()> {
        run!(self, Kind::Relaxed, |tx| async {
            consume_ceremony(tx, ceremony).await?;
            audit::append(tx, audit, None).await?;
            Ok(End::Commit(()))
        })
    }

    /// Enrols the user's first passkey through the ceremony's session,
    /// which stays waiting (a registration signs nothing of the approval).
    pub async fn enrol_first_passkey(
        &self,
        ceremony: &PendingCeremony,
        enrolment: Enrolment<'_>,
        audit: &AuditEvent,
    ) -> StoreResult<Approved> {
        let json = serde_json::to_string(enrolment.passkey)?;
        run!(self, Kind::Durable, |tx| enrol_first(tx, ceremony, &enrolment, &json, audit))
    }

    /// Records a verified use of a passkey (its counter only moves forward)
    /// and allows the ceremony's session, with the evidence and the audit
    /// event: all of it, or nothing.
    pub async fn record_passkey_use_and_allow(
        &self,
        ceremony: &PendingCeremony,
        used: PasskeyUse<'_>,
        audit: &AuditEvent,
    ) -> StoreResult<Approved> {
        let json = serde_json::to_string(&used.passkey.passkey)?;
        run!(self, Kind::Durable, |tx| use_and_allow(tx, ceremony, &used, PasskeyOf::Account, &json, audit))
    }

    /// The same for the paired phone's passkey (`used.passkey.id` is the
    /// phone's id): refused too once the phone is unpaired.
    pub async fn record_phone_use_and_allow(
        &self,
        ceremony: &PendingCeremony,
        used: PasskeyUse<'_>,
        audit: &AuditEvent,
    ) -> StoreResult<Approved> {
        let json = serde_json::to_string(&used.passkey.passkey)?;
        run!(self, Kind::Durable, |tx| use_and_allow(tx, ceremony, &used, PasskeyOf::Phone, &json, audit))
    }

    /// Adds a passkey from the account area, with its notice; `false`
    /// (nothing stored) if the credential belongs to an account already.
    pub async fn add_passkey(&self, new: NewPasskey<'_>, notice: FactorNotice<'_>) -> StoreResult<bool> {
        let json = serde_json::to_string(new.passkey)?;
        run!(self, Kind::Durable, |tx| add(tx, &new, &json, &notice))
    }

    /// Every entry of the credential registry about `credential_id`, oldest first.
    pub async fn registry_of_credential(&self, credential_id: &[u8]) -> StoreResult<Vec<RegistryEntry>> {
        run!(self, Kind::Read, |tx| async {
            let rows = tx
                .query(
                    "SELECT user_id, public_key, event, at FROM credential_registry WHERE credential_id = $1 ORDER BY id",
                    &[credential_id.into()],
                )
                .await?;
            let entries = rows
                .iter()
                .map(|r| {
                    Ok(RegistryEntry {
                        user_id: r.get(0)?,
                        public_key: r.get(1)?,
                        added: r.get::<String>(2)? == "added",
                        at: Millis(r.get(3)?),
                    })
                })
                .collect::<StoreResult<_>>()?;
            Ok(End::Commit(entries))
        })
    }
}

/// The user's passkeys, oldest first.
pub(super) async fn rows_of_user(tx: &impl Tx, user_id: &str) -> StoreResult<Vec<PasskeyRow>> {
    let rows =
        tx.query("SELECT id, passkey, sign_count FROM passkeys WHERE user_id = $1 ORDER BY created_at, id", &[user_id.into()]).await?;
    rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect()
}

/// Deletes exactly this ceremony state; `false` if it is gone (answered
/// concurrently) or was replaced by a newer start.
async fn consume_ceremony(tx: &impl Tx, ceremony: &PendingCeremony) -> StoreResult<bool> {
    let deleted = tx
        .execute(
            "DELETE FROM webauthn_ceremonies WHERE sca_session_id = $1 AND kind = $2 AND ceremony_id = $3",
            &[ceremony.session_id.as_str().into(), ceremony.kind.as_str().into(), ceremony.id.into()],
        )
        .await?;
    Ok(deleted == 1)
}

/// Commits an approval; rolls back a refusal.
fn settle(approved: Approved) -> End<Approved> {
    if approved == Approved::Yes {
        End::Commit(approved)
    } else {
        End::Rollback(approved)
    }
}

async fn enrol_first(
    tx: &impl Tx,
    ceremony: &PendingCeremony,
    enrolment: &Enrolment<'_>,
    passkey_json: &str,
    event: &AuditEvent,
) -> StoreResult<End<Approved>> {
    if !consume_ceremony(tx, ceremony).await? {
        return Ok(settle(Approved::CeremonyGone));
    }
    // Only through a session that still waits. SQLite's writers are
    // serialised; on PostgreSQL the share lock holds a concurrent decision
    // back until this commits.
    let still_waiting = match tx.dialect() {
        Dialect::Sqlite => "SELECT 1 FROM sca_sessions WHERE id = $1 AND state = $3 AND expires_at > $2",
        Dialect::Postgres => "SELECT 1 FROM sca_sessions WHERE id = $1 AND state = $3 AND expires_at > $2 FOR SHARE",
    };
    let params = [ceremony.session_id.as_str().into(), enrolment.now.0.into(), State::Waiting.as_str().into()];
    if tx.query_opt(still_waiting, &params).await?.is_none() {
        return Ok(settle(Approved::SessionClosed));
    }
    // The first passkey only: a compare-and-set on the user's count.
    let first = tx
        .execute("UPDATE users SET passkey_count = passkey_count + 1 WHERE id = $1 AND passkey_count = 0", &[enrolment.user_id.into()])
        .await?;
    if first == 0 {
        return Ok(settle(Approved::PasskeyExists));
    }
    let credential_id: &[u8] = enrolment.passkey.cred_id().as_ref();
    if is_a_phones(tx, credential_id).await? {
        return Ok(settle(Approved::CredentialInUse));
    }
    let inserted = tx
        .execute(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, sign_count, created_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
            &[
                uuid::Uuid::now_v7().to_string().as_str().into(),
                enrolment.user_id.into(),
                credential_id.into(),
                passkey_json.into(),
                enrolment.sign_count.into(),
                enrolment.now.0.into(),
            ],
        )
        .await;
    match inserted {
        Err(StoreError::Duplicate(_)) => return Ok(settle(Approved::CredentialInUse)),
        other => other?,
    };
    register(tx, enrolment.user_id, enrolment.passkey, enrolment.attestation, enrolment.now).await?;
    if let Some(notice) = enrolment.notice {
        outbox::insert(tx, notice).await?;
    }
    audit::append(tx, event, None).await?;
    Ok(settle(Approved::Yes))
}

/// Whose passkey an assertion used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PasskeyOf {
    Account,
    /// A paired phone's, while it is paired.
    Phone,
}

impl PasskeyOf {
    /// Its use recorded: the counter only moves forward (both zero: an
    /// authenticator that keeps no counter), with the backup flags.
    pub(super) fn record_use(self) -> &'static str {
        match self {
            PasskeyOf::Account => {
                "UPDATE passkeys SET passkey = $1, sign_count = $2, last_used_at = $3
                 WHERE id = $4 AND (sign_count < $2 OR ($2 = 0 AND sign_count = 0))"
            }
            PasskeyOf::Phone => {
                "UPDATE paired_phones SET passkey = $1, sign_count = $2, last_used_at = $3
                 WHERE id = $4 AND ended_at IS NULL AND (sign_count < $2 OR ($2 = 0 AND sign_count = 0))"
            }
        }
    }
}

async fn use_and_allow(
    tx: &impl Tx,
    ceremony: &PendingCeremony,
    used: &PasskeyUse<'_>,
    of: PasskeyOf,
    passkey_json: &str,
    event: &AuditEvent,
) -> StoreResult<End<Approved>> {
    if !consume_ceremony(tx, ceremony).await? {
        return Ok(settle(Approved::CeremonyGone));
    }
    let params = [passkey_json.into(), used.new_sign_count.into(), used.now.0.into(), used.passkey.id.as_str().into()];
    let moved = tx.execute(of.record_use(), &params).await?;
    if moved == 0 {
        return Ok(settle(Approved::CounterNotAdvanced));
    }
    if !sessions::decide(tx, &ceremony.session_id, State::Allow, used.now).await? {
        return Ok(settle(Approved::SessionClosed));
    }
    if let Some(kept) = used.evidence {
        evidence::keep(tx, &ceremony.session_id, kept, used.now).await?;
    }
    audit::append(tx, event, None).await?;
    Ok(settle(Approved::Yes))
}

async fn add(tx: &impl Tx, new: &NewPasskey<'_>, passkey_json: &str, notice: &FactorNotice<'_>) -> StoreResult<End<bool>> {
    let credential_id: &[u8] = new.passkey.cred_id().as_ref();
    if is_a_phones(tx, credential_id).await? {
        return Ok(End::Rollback(false));
    }
    let inserted = tx
        .execute(
            "INSERT INTO passkeys (id, user_id, credential_id, passkey, sign_count, created_at, name) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                uuid::Uuid::now_v7().to_string().as_str().into(),
                new.user_id.into(),
                credential_id.into(),
                passkey_json.into(),
                new.sign_count.into(),
                new.now.0.into(),
                new.name.into(),
            ],
        )
        .await;
    match inserted {
        Err(StoreError::Duplicate(_)) => return Ok(End::Rollback(false)),
        other => other?,
    };
    tx.execute("UPDATE users SET passkey_count = passkey_count + 1 WHERE id = $1", &[new.user_id.into()]).await?;
    register(tx, new.user_id, new.passkey, new.attestation, new.now).await?;
    outbox::insert(tx, notice.sms).await?;
    audit::append(tx, notice.audit, None).await?;
    Ok(End::Commit(true))
}

/// Whether `credential_id` is a paired phone's passkey (ended or not):
/// never an account's passkey too, whoever asks.
async fn is_a_phones(tx: &impl Tx, credential_id: &[u8]) -> StoreResult<bool> {
    Ok(tx.query_opt("SELECT 1 FROM paired_phones WHERE credential_id = $1", &[credential_id.into()]).await?.is_some())
}

/// Appends a passkey bound to `user_id` to the credential registry.
pub(super) async fn register(tx: &impl Tx, user_id: &str, passkey: &Passkey, attestation: Option<&str>, now: Millis) -> StoreResult<()> {
    let public_key = serde_json::to_string(passkey.get_public_key())?;
    let credential_id: &[u8] = passkey.cred_id().as_ref();
    tx.execute(
        "INSERT INTO credential_registry (user_id, credential_id, public_key, attestation_object, event, at)
         VALUES ($1, $2, $3, $4, 'added', $5)",
        &[user_id.into(), credential_id.into(), public_key.as_str().into(), attestation.into(), now.0.into()],
    )
    .await?;
    Ok(())
}
