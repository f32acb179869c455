//! Rows as every backend reads them, before their columns are parsed into
//! the records of [`crate::model`]: one parse for all backends. (Backends
//! fill these from their own row types, then release their connection
//! before parsing JSON.)

use crate::clock::Millis;
use crate::email::Email;
use crate::ledger::Amount;
use crate::model::{
    CeremonyKind, Fingerprint, LinkedSession, Method, Owner, PendingCeremony, Role, Session, State, StoredPasskey, UserRecord,
};
use crate::password::PasswordHash;
use crate::phone::Phone;
use crate::store::{StoreError, StoreResult};

/// The columns of a user, in the order backends select them.
pub(crate) const USER_COLUMNS: &str = "id, phone, display_name, webauthn_handle, email, password_hash, role, company_id";

/// A user row ([`USER_COLUMNS`]).
pub(crate) struct UserRow {
    pub id: String,
    pub phone: String,
    pub display_name: String,
    pub webauthn_handle: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub role: String,
    pub company_id: String,
}

impl UserRow {
    pub fn parse(self) -> StoreResult<UserRecord> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("a user has a bad {what}"));
        Ok(UserRecord {
            id: self.id,
            phone: Phone::parse(&self.phone).map_err(|_| corrupt("phone number"))?,
            display_name: self.display_name,
            webauthn_handle: self.webauthn_handle.parse().map_err(|_| corrupt("WebAuthn user handle"))?,
            email: self.email.map(|e| Email::parse(&e).map_err(|_| corrupt("email"))).transpose()?,
            password: self.password_hash.map(PasswordHash::from_stored),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("role"))?,
            company_id: self.company_id,
        })
    }
}

/// The columns of an SCA session, in the order backends select them.
pub(crate) const SESSION_COLUMNS: &str =
    "id, partner_id, user_id, method, action_type, fingerprint, summary, state, created_at, expires_at, decided_at";

/// An SCA session row ([`SESSION_COLUMNS`]).
pub(crate) struct SessionRow {
    pub id: String,
    pub partner_id: String,
    pub user_id: String,
    pub method: String,
    pub action_type: String,
    pub fingerprint: Vec<u8>,
    pub summary: String,
    pub state: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
}

impl SessionRow {
    pub fn parse(self) -> StoreResult<Session> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("an SCA session has a bad {what}"));
        Ok(Session {
            id: self.id,
            owner: Owner { partner_id: self.partner_id, user_id: self.user_id },
            method: Method::parse(&self.method).ok_or_else(|| corrupt("method"))?,
            action_type: self.action_type,
            fingerprint: Fingerprint(self.fingerprint.try_into().map_err(|_| corrupt("fingerprint"))?),
            summary: serde_json::from_str(&self.summary)?,
            state: State::parse(&self.state).ok_or_else(|| corrupt("state"))?,
            created_at: Millis(self.created_at),
            expires_at: Millis(self.expires_at),
            decided_at: self.decided_at.map(Millis),
        })
    }
}

/// A passkey row: id, the webauthn-rs passkey as JSON, its counter.
pub(crate) type PasskeyRow = (String, String, i64);

pub(crate) fn parse_passkeys(rows: Vec<PasskeyRow>) -> StoreResult<Vec<StoredPasskey>> {
    rows.into_iter()
        .map(|(id, json, sign_count)| {
            Ok(StoredPasskey { id, passkey: serde_json::from_str(&json)?, sign_count: u32::try_from(sign_count).unwrap_or(u32::MAX) })
        })
        .collect()
}

/// An approval link's rows, read on one snapshot.
pub(crate) struct LinkedRows {
    pub session: SessionRow,
    pub partner_name: String,
    pub passkeys: Vec<PasskeyRow>,
    /// The pending ceremony: kind, id, saved state.
    pub ceremony: Option<(CeremonyKind, i64, String)>,
}

impl LinkedRows {
    pub fn parse(self) -> StoreResult<LinkedSession> {
        let session_id = self.session.id.clone();
        Ok(LinkedSession {
            session: self.session.parse()?,
            partner_name: self.partner_name,
            passkeys: parse_passkeys(self.passkeys)?,
            ceremony: self.ceremony.map(|(kind, id, state)| PendingCeremony { session_id, kind, id, state }),
        })
    }
}

/// A transfer row.
pub(crate) struct TransferRow {
    pub id: String,
    pub status: String,
    pub cents: i64,
    pub currency: String,
    pub name: String,
    pub iban: String,
    pub reference: Option<String>,
    pub created_at: i64,
}

impl TransferRow {
    pub fn parse(self) -> StoreResult<shared::Transfer> {
        Ok(shared::Transfer {
            id: self.id,
            status: self.status,
            amount: Amount::from_cents(self.cents).map_err(|e| StoreError::Corrupt(format!("an amount: {e}")))?.to_string(),
            currency: self.currency,
            beneficiary: shared::BeneficiaryInput { name: self.name, iban: self.iban },
            reference: self.reference,
            created_at: Millis(self.created_at).to_rfc3339(),
        })
    }
}

/// Whether a stored webauthn-rs passkey (JSON) is backed up (synced) by
/// its provider: the backup state flag of its latest use.
pub(crate) fn backed_up(passkey_json: &str) -> StoreResult<bool> {
    let value: serde_json::Value = serde_json::from_str(passkey_json)?;
    Ok(value["cred"]["backup_state"].as_bool().unwrap_or(false))
}

/// A waiting `sms-otp` session's row with its token's hash and its code's MAC.
pub(crate) struct OtpRow {
    pub session: SessionRow,
    pub token_hash: Vec<u8>,
    pub mac: Vec<u8>,
}

impl OtpRow {
    pub fn parse(self) -> StoreResult<crate::store::OtpSession> {
        Ok(crate::store::OtpSession { session: self.session.parse()?, token_hash: hash_of(&self.token_hash)?, mac: hash_of(&self.mac)? })
    }
}

/// A stored SHA-256 or HMAC-SHA256 (32 bytes).
fn hash_of(bytes: &[u8]) -> StoreResult<crate::token::SecretHash> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Corrupt("a stored hash is not 32 bytes".into()))?;
    Ok(crate::token::SecretHash(bytes))
}

/// An audit event's columns, as stored and as chained (`crate::chain`):
/// appending and verifying read the same list in the same order.
pub(crate) struct AuditColumns<'a> {
    pub at: i64,
    pub kind: &'a str,
    pub partner_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub detail: &'a str,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl AuditColumns<'_> {
    pub fn chained(&self) -> [crate::chain::Value<'_>; 8] {
        use crate::chain::Value::{Int, Text};
        [
            Int(self.at),
            Text(Some(self.kind)),
            Text(self.partner_id),
            Text(self.user_id),
            Text(self.session_id),
            Text(Some(self.detail)),
            Text(self.client_ip),
            Text(self.user_agent),
        ]
    }
}

/// The audit columns a chain verification reads, in [`AuditColumns`]' order.
pub(crate) const AUDIT_CHAINED: &str = "at, kind, partner_id, user_id, session_id, detail, client_ip, user_agent";

/// An evidence row's columns, as stored and as chained.
pub(crate) struct EvidenceColumns<'a> {
    pub session_id: &'a str,
    pub at: i64,
    pub evidence: &'a str,
}

impl EvidenceColumns<'_> {
    pub fn chained(&self) -> [crate::chain::Value<'_>; 3] {
        use crate::chain::Value::{Int, Text};
        [Text(Some(self.session_id)), Int(self.at), Text(Some(self.evidence))]
    }
}

/// The evidence columns a chain verification reads, in [`EvidenceColumns`]' order.
pub(crate) const EVIDENCE_CHAINED: &str = "session_id, at, evidence";

impl SessionRow {
    /// The [`SESSION_COLUMNS`] of a row read through the seam, from column 0.
    pub fn read(r: &crate::store::sql::Row) -> StoreResult<SessionRow> {
        Ok(SessionRow {
            id: r.get(0)?,
            partner_id: r.get(1)?,
            user_id: r.get(2)?,
            method: r.get(3)?,
            action_type: r.get(4)?,
            fingerprint: r.get(5)?,
            summary: r.get(6)?,
            state: r.get(7)?,
            created_at: r.get(8)?,
            expires_at: r.get(9)?,
            decided_at: r.get(10)?,
        })
    }
}
