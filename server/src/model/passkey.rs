//! Passkeys and the WebAuthn ceremonies bound to SCA sessions.

use webauthn_rs::prelude::Passkey;

use super::Session;

#[derive(Debug, Clone)]
pub struct StoredPasskey {
    pub id: String,
    pub passkey: Passkey,
    /// The signature counter last accepted (0: the authenticator keeps
    /// none). Kept beside the credential so that storage can move it
    /// forward with a compare-and-set.
    pub sign_count: u32,
}

/// One entry of the credential registry: a passkey bound to a user (with
/// its public key, webauthn-rs's COSE key as JSON) or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryEntry {
    pub user_id: String,
    pub public_key: Option<String>,
    pub added: bool,
    pub at: crate::clock::Millis,
}

/// Which ceremony a saved state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    Registration,
    Authentication,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Registration => "registration",
            CeremonyKind::Authentication => "authentication",
        }
    }
}

/// A ceremony's saved state, read to verify the browser's answer. The
/// transaction that acts on a verified answer consumes it, so that each
/// challenge is answered successfully at most once.
#[derive(Debug, Clone)]
pub struct PendingCeremony {
    pub session_id: String,
    pub kind: CeremonyKind,
    /// Random per start: a newer start of the same kind replaces it.
    pub id: i64,
    /// webauthn-rs's state, as JSON.
    pub state: String,
}

/// An approval link's session and what its passkey ceremonies need, read
/// on one snapshot.
#[derive(Debug)]
pub struct LinkedSession {
    pub session: Session,
    pub partner_name: String,
    /// The user's passkeys, oldest first.
    pub passkeys: Vec<StoredPasskey>,
    /// The session's pending ceremony of the kind asked for, if any.
    pub ceremony: Option<PendingCeremony>,
}

/// Who ended a pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnpairedBy {
    /// The phone itself.
    Phone,
    /// The user, from the account area.
    User,
    /// An admin of the user's company (their user id): a lost phone.
    Admin(String),
}

impl UnpairedBy {
    pub fn as_str(&self) -> &'static str {
        match self {
            UnpairedBy::Phone => "phone",
            UnpairedBy::User => "user",
            UnpairedBy::Admin(_) => "admin",
        }
    }
}

/// A user's paired phone (at most one at a time): its own passkey, which
/// approves `paired-device` sessions, and when it was paired and used.
#[derive(Debug, Clone)]
pub struct PairedPhone {
    pub id: String,
    pub user_id: String,
    /// The phone's passkey, with the counter last accepted.
    pub passkey: StoredPasskey,
    pub paired_at: crate::clock::Millis,
    pub last_used_at: Option<crate::clock::Millis>,
    /// The passkey is synced by its provider (backed up), as real phones'
    /// default providers do; bound to the phone alone otherwise.
    pub synced: bool,
    /// It has a push subscription: approvals reach it as notifications
    /// (dropped when its push service says the subscription is dead).
    pub notifications: bool,
}
