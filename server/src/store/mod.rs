//! Storage: the [`Store`], its operations, and the two databases under it.
//! No SQL lives anywhere else, and no driver type crosses this boundary:
//! the operations speak the records of [`crate::model`] and their own
//! [`StoreError`].
//!
//! Each operation is written once for both databases, in the file of its
//! area (`sessions.rs`, `passkeys.rs`, `directory.rs`, `company.rs`,
//! `totp.rs`, `trusted.rs`, `browser_sessions.rs`, `account_passkeys.rs`,
//! `limits.rs`, `ledger.rs`, `audit.rs`, `evidence.rs`, `outbox.rs`,
//! `purge.rs`): an `async fn` over a transaction ([`sql::Tx`]) holding its
//! SQL with `$n` placeholders, and a method of [`Store`] that runs it with
//! its durability ([`sql::Kind`]) through [`run!`]. A new operation is one
//! function in one file; a new table, one migration per database.
//!
//! Every operation is one transaction, and every state transition a
//! compare-and-set (`… WHERE state = 'waiting'`), so that several
//! processes (or instances) sharing the database never both win one. Each
//! operation that changes security state writes its audit event in the
//! same transaction: the log never misses a decision, nor records one
//! that did not happen. A refusal ([`sql::End::Rollback`]) undoes what
//! the operation wrote, on both databases.
//!
//! The databases: [`sqlite`] (embedded, the default: one connection, its
//! writers grouped into one commit) and [`postgres`] (a pool; several
//! instances on one database), each only a [`sql::Tx`] and its
//! migrations. One test suite (`suite/`) runs against each.

mod account_passkeys;
mod audit;
mod browser_sessions;
mod company;
mod directory;
mod evidence;
mod ledger;
mod limits;
mod migrations;
mod outbox;
mod paired_phones;
mod passkeys;
mod phone_approvals;
mod phone_confirmations;
pub mod postgres;
mod purge;
mod push_outbox;
mod rows;
#[cfg(test)]
mod schemas;
mod sessions;
pub(crate) mod sql;
pub mod sqlite;
#[cfg(test)]
mod statements;
#[cfg(test)]
mod suite;
mod totp;
mod trusted;

use std::sync::Arc;

pub use outbox::{ClaimedSms, SmsAttempt, SmsState};
pub use paired_phones::{NewPairedPhone, Pairing, Replacing};
pub use phone_approvals::{FeedCursor, FEED_OVERLAP_MS};
pub use phone_confirmations::{Asking, Confirmed, NewConfirmation};
pub use push_outbox::{ClaimedPush, PushAttempt, PushState, StoredSubscription};
pub use sql::Lookup;
pub use totp::{SealedSlot, SealedTotpKey};

use crate::chain::ChainKey;
use crate::clock::Millis;
use crate::ledger::{Action, Created};
use crate::model::{AuditEvent, Caller, Fingerprint, Method, Owner, Session, StoredPasskey};
use crate::notify::sms::OutgoingSms;
use crate::token::SecretHash;

/// Whether a passkey is synced by its provider (its backup state flag).
pub fn passkey_synced(passkey: &webauthn_rs::prelude::Passkey) -> StoreResult<bool> {
    rows::backed_up(&serde_json::to_string(passkey)?)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached.
    #[error("database: {0}")]
    Backend(String),
    /// A stored value does not parse back.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// A concurrent transaction won (serialization failure, deadlock); the
    /// backend retries before giving up with this.
    #[error("database contention: {0}")]
    Contention(String),
    /// The database role may not do this (PostgreSQL: the application's
    /// role purging the append-only tables, which only their owner may).
    #[error("not permitted to this database role: {0}")]
    NotPermitted(String),
    /// A row with the same unique key exists. The operations that expect
    /// one answer a refusal instead, rolled back ([`sql::End::Rollback`]):
    /// on PostgreSQL the failed statement aborted the transaction.
    #[error("a row with this key exists: {0}")]
    Duplicate(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Corrupt(format!("JSON: {e}"))
    }
}

/// A handle on the configured backend; cheap to clone.
#[derive(Clone)]
pub struct Store(Arc<Backend>);

/// The two databases, dispatched statically.
pub(crate) enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens (creating and migrating if needed) the database at `url`:
    /// `sqlite:…` or `postgres://…` (`postgresql://…`).
    pub async fn open(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let store = Store(Arc::new(Backend::Postgres(postgres::PgStore::open(url, options).await?)));
            store.keep_linking();
            Ok(store)
        } else {
            Ok(Store(Arc::new(Backend::Sqlite(sqlite::SqliteStore::open(url, options).await?))))
        }
    }

    /// PostgreSQL: the chains' linker of this instance (`audit.rs`), at
    /// once (what a crash left waiting), after each commit that appended
    /// a waiting row, and every [`LINK_SWEEP`] (what another instance's
    /// crash left). It ends with the last handle on the store.
    fn keep_linking(&self) {
        let Backend::Postgres(postgres) = self.backend() else { return };
        let (wake, store) = (postgres.linker.clone(), Arc::downgrade(&self.0));
        tokio::spawn(async move {
            loop {
                let Some(backend) = store.upgrade() else { return };
                if let Err(e) = Store(backend).link_chains().await {
                    tracing::warn!(error = %e, "linking the audit chains failed; again at the next commit or sweep");
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(LINK_SWEEP) => {}
                }
            }
        });
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.0
    }

    /// The database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        run!(self, sql::Kind::Read, |tx| async { sql::Tx::query_one(tx, "SELECT 1", &[]).await.map(|_| sql::End::Commit(())) })
    }
}

/// How often a linker links what others left waiting.
const LINK_SWEEP: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs an operation written once for both databases: `$op`, an
/// expression over the transaction `$tx` giving a `StoreResult<End<T>>`
/// future, as `$kind` ([`sql::Kind`]). On SQLite it runs in the group
/// commit and completes at once; on PostgreSQL it runs again if it lost
/// to a concurrent transaction.
macro_rules! run {
    ($store:expr, $kind:expr, |$tx:ident| $op:expr) => {{
        match $store.backend() {
            $crate::store::Backend::Sqlite(sqlite) => sqlite.run($kind, |$tx| $crate::store::sql::complete_now($op)).await,
            $crate::store::Backend::Postgres(postgres) => {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let tx = postgres.begin($kind).await?;
                    let out = {
                        let $tx = &tx;
                        $op.await
                    };
                    match postgres.finish(tx, out, attempt).await {
                        $crate::store::postgres::tx::Finished::Done(out) => break out,
                        $crate::store::postgres::tx::Finished::Retry => continue,
                    }
                }
            }
        }
    }};
}
pub(crate) use run;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Each commit reaches stable storage before it is answered (SQLite
    /// `synchronous = FULL`): an answered transfer survives a power cut.
    Full,
    /// Commits survive a crash of Passgate, not necessarily a power cut
    /// (SQLite `synchronous = NORMAL`).
    Normal,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub durability: Durability,
    /// MACs the audit chain's rows (`crate::chain`): derived from
    /// `PASSGATE_SECRETS_KEY`, so the same on every instance.
    pub chain_key: ChainKey,
}

impl StoreOptions {
    /// Durable commits; the chain keyed from `secrets`.
    pub fn new(secrets: &crate::sealed::SecretsKey) -> Self {
        StoreOptions { durability: Durability::Full, chain_key: ChainKey::new(secrets) }
    }
}

/// A new waiting session and what it is bound to.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub token_hash: SecretHash,
    pub link_hash: Option<SecretHash>,
    pub owner: &'a Owner,
    pub method: Method,
    pub action: &'a Action,
    pub fingerprint: Fingerprint,
    pub created_at: Millis,
    pub expires_at: Millis,
    /// `sms-otp`: the code the session waits for.
    pub otp: Option<NewOtp>,
}

/// The one-time code of an `sms-otp` session. Opening it supersedes (denies)
/// the owner's waiting code for the same request, unless that one was sent
/// less than `resend_after_ms` ago (then nothing is stored).
#[derive(Debug, Clone, Copy)]
pub struct NewOtp {
    /// The code's MAC (see `sca::otp`), never the code.
    pub mac: SecretHash,
    pub resend_after_ms: i64,
}

/// The owner's waiting `sms-otp` session, with what checking a code needs.
#[derive(Debug, Clone)]
pub struct OtpSession {
    pub session: Session,
    pub token_hash: SecretHash,
    pub mac: SecretHash,
}

/// A rate: at most `burst` at once, then one every `interval_ms` (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub interval_ms: i64,
}

impl Rate {
    /// GCRA: with `tat` the theoretical arrival time stored for the key,
    /// either admits a request now (the new `tat` to store) or says how
    /// long until one would be admitted.
    pub fn admit(&self, tat: Option<Millis>, now: Millis) -> Result<Millis, i64> {
        let start = tat.map_or(now.0, |t| t.0.max(now.0));
        let next = start.saturating_add(self.interval_ms);
        let excess = next - now.0 - self.allowance_ms();
        if excess > 0 {
            Err(excess)
        } else {
            Ok(Millis(next))
        }
    }

    /// How far ahead of now the stored time may run: the burst's worth.
    pub fn allowance_ms(&self) -> i64 {
        i64::from(self.burst).saturating_mul(self.interval_ms)
    }
}

/// The abuse limits checked when a session opens, in its transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Waiting, unexpired sessions per user.
    pub open_sessions_per_user: u32,
    /// SMS per user.
    pub sms_per_user: Rate,
    /// Sessions opened per partner.
    pub sessions_per_partner: Rate,
    /// A `paired-device` action while one already waits for the user's
    /// phone: at most one pending push per user (against push fatigue).
    pub pending_push: PendingPush,
}

/// What a new `paired-device` action does to the one waiting already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingPush {
    /// The waiting one is denied (its poll reads `deny`, `canceled_at`
    /// set) and the new one pushed.
    Supersede,
    /// The new one is refused (429) until the waiting one is decided or
    /// runs out.
    Refuse,
}

/// Which limit refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    OpenSessions,
    Sms,
    PartnerSessions,
    /// An approval waits on the user's phone (`PendingPush::Refuse`).
    PendingPush,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::OpenSessions => "open_sessions_per_user",
            LimitKind::Sms => "sms_per_user",
            LimitKind::PartnerSessions => "sessions_per_partner",
            LimitKind::PendingPush => "pending_push",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionOpened {
    /// The session's id.
    Opened(String),
    /// Nothing was stored; try again after this long.
    Limited { limit: LimitKind, retry_after_ms: i64 },
    /// A code for this request was sent less than its resend wait ago:
    /// nothing was stored or sent.
    TooSoon { retry_after_ms: i64 },
}

/// The first successful response of a create, kept for its idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedResponse {
    /// The user the request ran for.
    pub user_id: String,
    pub fingerprint: Fingerprint,
    pub created: Created,
}

impl RememberedResponse {
    /// Whether `owner`'s request `fingerprint` is the one remembered.
    pub fn answers(&self, owner: &Owner, fingerprint: &Fingerprint) -> bool {
        self.user_id == owner.user_id && self.fingerprint == *fingerprint
    }
}

/// An idempotency key as the replay carries it.
#[derive(Debug, Clone, Copy)]
pub struct KeyWindow<'a> {
    pub key: &'a str,
    /// Responses older than this are forgotten.
    pub not_before: Millis,
}

/// A replay of an approved request.
#[derive(Debug)]
pub struct Replay<'a> {
    pub token_hash: &'a SecretHash,
    pub caller: &'a Caller,
    pub fingerprint: &'a Fingerprint,
    pub action: &'a Action,
    pub idempotency: Option<KeyWindow<'a>>,
    pub now: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The session was consumed and the action ran, once.
    Ran(Created),
    /// The idempotency key had already run this request: its response.
    Remembered(Created),
    /// The idempotency key had run another request: nothing ran.
    KeyReused,
    /// Nothing consumed, nothing ran: the session tells why.
    Refused,
}

/// A verified first passkey, to enrol through an approval link. A
/// registration signs nothing of the approval: the link's session is
/// allowed afterwards, by an assertion of this passkey.
#[derive(Debug)]
pub struct Enrolment<'a> {
    pub user_id: &'a str,
    pub passkey: &'a webauthn_rs::prelude::Passkey,
    pub sign_count: u32,
    /// The browser's attestation object (base64url), for the registry.
    pub attestation: Option<&'a str>,
    /// The SMS telling the user a passkey was added, stored with it.
    pub notice: Option<&'a OutgoingSms>,
    pub now: Millis,
}

/// A verified use of a stored passkey.
#[derive(Debug)]
pub struct PasskeyUse<'a> {
    pub passkey: &'a StoredPasskey,
    /// The counter the assertion carried; stored only if it moves forward.
    pub new_sign_count: u32,
    /// The approval's evidence, as JSON.
    pub evidence: Option<&'a str>,
    pub now: Millis,
}

/// A passkey added from the account area.
#[derive(Debug)]
pub struct NewPasskey<'a> {
    pub user_id: &'a str,
    pub passkey: &'a webauthn_rs::prelude::Passkey,
    /// The browser's attestation object (base64url), for the registry.
    pub attestation: Option<&'a str>,
    pub sign_count: u32,
    pub name: Option<&'a str>,
    pub now: Millis,
}

/// A factor added or removed: its audit event (naming it) and the SMS that
/// tells the user, both written in the operation's transaction.
#[derive(Debug, Clone, Copy)]
pub struct FactorNotice<'a> {
    pub audit: &'a AuditEvent,
    pub sms: &'a OutgoingSms,
}

/// A factor to remove, and what ends with it: every browser session of
/// the user but `keep_session`, and every trusted browser.
#[derive(Debug, Clone, Copy)]
pub struct Removal<'a> {
    pub user_id: &'a str,
    pub notice: FactorNotice<'a>,
    /// Refuse to remove the user's last factor (their company forces two-factor).
    pub keep_one: bool,
    /// The session that asked (the user's own), which stays.
    pub keep_session: Option<&'a SecretHash>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Yes,
    /// No such factor of the user.
    Absent,
    /// It is the user's last factor and `keep_one` was asked: nothing changed.
    LastFactor,
}

/// A step-up code sent by SMS to the user of a browser session.
#[derive(Debug, Clone, Copy)]
pub struct StepUpCode<'a> {
    pub session: &'a SecretHash,
    /// The code's MAC (see `sca::otp`), never the code.
    pub mac: &'a SecretHash,
    pub sms: &'a OutgoingSms,
    pub audit: &'a AuditEvent,
    /// A session waits this long between two codes.
    pub resend_after_ms: i64,
    pub now: Millis,
}

/// The answer of [`Store::set_credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsSet {
    Yes,
    /// Another user signs in with this email.
    EmailInUse,
}

/// What storage made of a verified ceremony's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approved {
    /// Taken: the session allowed (an assertion), or the first passkey
    /// enrolled (a registration).
    Yes,
    /// The ceremony was answered already, or replaced by a newer start.
    CeremonyGone,
    /// The session is no longer waiting, or ran out.
    SessionClosed,
    /// Enrolment: the user has a passkey already (a link enrols only the first).
    PasskeyExists,
    /// Enrolment: the credential belongs to an account already.
    CredentialInUse,
    /// Use: the signature counter did not move forward past the stored one
    /// (a concurrent approval used a higher one, or a cloned authenticator).
    CounterNotAdvanced,
}

/// What the retention purge removes: rows older than these times.
#[derive(Debug, Clone, Copy)]
pub struct PurgeBefore {
    /// Sessions that ran out unused, their ceremonies, SMS, rate rows,
    /// browser sessions last used before it (they ended long before).
    pub operational: Millis,
    /// The audit log and the approval evidence.
    pub evidence: Millis,
    /// Remembered idempotent responses.
    pub idempotency: Millis,
    /// Sign-in ceremonies started before it and never answered.
    pub ceremonies: Millis,
    /// At most this many rows per table and call.
    pub batch: u32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Purged {
    pub sessions: u64,
    pub browser_sessions: u64,
    pub sms: u64,
    pub idempotency_keys: u64,
    pub audit_events: u64,
    pub evidence: u64,
}

impl Purged {
    pub fn total(&self) -> u64 {
        self.sessions + self.browser_sessions + self.sms + self.idempotency_keys + self.audit_events + self.evidence
    }
}

/// A chained row as verification reads it (see `crate::chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    pub id: i64,
    pub seq: i64,
    pub at: i64,
    /// `chain::canonical(seq, the row's columns)`, as read back.
    pub content: Vec<u8>,
    pub hash: Vec<u8>,
    pub mac: Vec<u8>,
}

/// A row appended waiting for its chain position (see `crate::chain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRow {
    pub id: i64,
    /// Its columns' encoding (`chain::encode`), as read back.
    pub encoded: Vec<u8>,
    pub row_mac: Vec<u8>,
}

/// Where a purge left a chain: the last row it removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: Vec<u8>,
    /// The MAC of `chain::anchor_digest(seq, hash)`.
    pub mac: Vec<u8>,
}

/// Where a chain stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    /// The newest position taken, and its hash.
    pub head_seq: i64,
    pub head_hash: Vec<u8>,
    /// The newest anchor a purge left: the position and hash of the last
    /// row it removed (the chain goes on from there).
    pub anchor: Option<Anchor>,
    /// Rows without a position: written before the chain existed.
    pub unchained: u64,
    /// Of those, the ones written after the chain's first row: never
    /// written by Passgate.
    pub unchained_after_start: u64,
    /// Rows appended with a row MAC, waiting for the linker to give them
    /// their position (PostgreSQL; milliseconds after their commit).
    pub waiting: u64,
}

/// One audit event as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditRow {
    pub at: String,
    pub kind: String,
    pub partner_id: Option<String>,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub detail: serde_json::Value,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Whose records a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    User(&'a str),
    Company(&'a str),
}

/// A page of the audit log.
#[derive(Debug, Clone, Copy)]
pub struct AuditQuery<'a> {
    pub scope: Scope<'a>,
    /// Only events whose kind is `{category}.…`.
    pub category: Option<&'a str>,
    /// Only events older than this one (the previous page's last id).
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// One event of the log with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub row: AuditRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_admits_its_burst_at_once_then_one_per_interval() {
        let rate = Rate { burst: 3, interval_ms: 1_000 };
        let t0 = Millis(10_000);
        let mut tat = None;
        for _ in 0..3 {
            tat = Some(rate.admit(tat, t0).unwrap());
        }
        assert_eq!(rate.admit(tat, t0), Err(1_000));
        assert_eq!(rate.admit(tat, Millis(10_999)), Err(1));
        let later = rate.admit(tat, Millis(11_000)).unwrap();
        assert_eq!(rate.admit(Some(later), Millis(11_000)), Err(1_000));
        // A long pause earns the burst back, no more.
        let rested = Millis(60_000);
        for _ in 0..3 {
            tat = Some(rate.admit(tat, rested).unwrap());
        }
        assert!(rate.admit(tat, rested).is_err());
    }
}
