//! Storage: one backend-neutral interface ([`Storage`]) and its backends.
//! No SQL lives anywhere else, and no driver type crosses this boundary:
//! the interface speaks the records of [`crate::model`] and its own
//! [`StoreError`].
//!
//! Every operation is one transaction, and every state transition a
//! compare-and-set (`… WHERE state = 'waiting'`), so that several
//! processes (or instances) sharing the database never both win one. Each
//! operation that changes security state writes its audit event in the
//! same transaction: the log never misses a decision, nor records one
//! that did not happen.
//!
//! Backends: [`sqlite`] (embedded, the default) and [`postgres`] (several
//! instances on one database). One test suite (`suite.rs`) runs against
//! each backend.

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
mod passkeys;
pub mod postgres;
mod purge;
mod rows;
#[cfg(test)]
mod schemas;
mod sessions;
pub(crate) mod sql;
pub mod sqlite;
#[cfg(test)]
mod suite;
mod totp;
mod trusted;

use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;

use uuid::Uuid;

use crate::chain::{Chain, ChainKey};
use crate::clock::Millis;
use crate::email::Email;
use crate::ledger::{Action, Created};
use crate::model::{
    AuditEvent, Caller, CeremonyKind, Company, Fingerprint, LinkedSession, Method, Owner, PasskeySummary, PendingCeremony, RegistryEntry,
    Role, Session, State, StoredPasskey, TotpFactor, TwoFactorPolicy, UserRecord,
};
use crate::password::PasswordHash;
use crate::phone::Phone;
use crate::sms::OutgoingSms;
use crate::token::SecretHash;

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
            Ok(Store(Arc::new(Backend::Postgres(postgres::PgStore::open(url, options).await?))))
        } else {
            Ok(Store(Arc::new(Backend::Sqlite(sqlite::SqliteStore::open(url, options).await?))))
        }
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.0
    }

    /// The database answers.
    pub async fn ping(&self) -> StoreResult<()> {
        run!(self, sql::Kind::Read, |tx| async { sql::Tx::query_one(tx, "SELECT 1", &[]).await.map(|_| sql::End::Commit(())) })
    }
}

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

impl Deref for Store {
    type Target = dyn Storage;

    fn deref(&self) -> &Self::Target {
        match &*self.0 {
            Backend::Sqlite(store) => store,
            Backend::Postgres(store) => store,
        }
    }
}

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
    pub fn new(secrets: &crate::sealed::SealingKey) -> Self {
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
        let allowance = i64::from(self.burst).saturating_mul(self.interval_ms);
        let excess = next - now.0 - allowance;
        if excess > 0 {
            Err(excess)
        } else {
            Ok(Millis(next))
        }
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
}

/// Which limit refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    OpenSessions,
    Sms,
    PartnerSessions,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::OpenSessions => "open_sessions_per_user",
            LimitKind::Sms => "sms_per_user",
            LimitKind::PartnerSessions => "sessions_per_partner",
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

/// The answer of [`Storage::set_credentials`].
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

/// Every operation Passgate asks of its database.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    // Directory: companies, users, partners, access tokens.
    async fn caller_by_access_token(&self, hash: &SecretHash) -> StoreResult<Option<Caller>>;
    async fn user(&self, user_id: &str) -> StoreResult<Option<UserRecord>>;
    /// Finds or creates the company by name; returns its id.
    async fn ensure_company(&self, name: &str, now: Millis) -> StoreResult<String>;
    /// Finds or creates the user with this phone number; returns its id.
    async fn ensure_user(&self, company_id: &str, phone: &Phone, display_name: &str, now: Millis) -> StoreResult<String>;
    /// Gives the user an email, a password and a role; an email another
    /// user has is refused (`EmailInUse`).
    async fn set_credentials(&self, user_id: &str, email: &Email, password: &PasswordHash, role: Role) -> StoreResult<CredentialsSet>;
    /// Finds or creates the partner by name; returns its id.
    async fn ensure_partner(&self, name: &str, embed: bool, now: Millis) -> StoreResult<String>;
    async fn insert_access_token(&self, hash: &SecretHash, partner_id: &str, user_id: &str, now: Millis) -> StoreResult<()>;
    /// Records `mode` as the database's mode unless one is recorded;
    /// returns the recorded one.
    async fn claim_mode(&self, mode: &str) -> StoreResult<String>;

    // Accounts.
    async fn user_by_email(&self, email: &Email) -> StoreResult<Option<UserRecord>>;

    // Passkeys in the account area.
    /// The user whose WebAuthn user handle this is.
    async fn user_by_webauthn_handle(&self, handle: &Uuid) -> StoreResult<Option<UserRecord>>;
    /// Adds a passkey to the user's account, logged and told by SMS; false
    /// if the credential belongs to an account already.
    async fn add_passkey(&self, new: NewPasskey<'_>, notice: FactorNotice<'_>) -> StoreResult<bool>;

    // The audit chain (`crate::chain`).
    async fn chain_state(&self, chain: Chain) -> StoreResult<ChainState>;
    /// Up to `limit` chained rows after position `after`, in order.
    async fn chain_rows(&self, chain: Chain, after: i64, limit: u32) -> StoreResult<Vec<ChainRow>>;
    /// Removes at most `limit` of the chain's oldest rows older than
    /// `cutoff`: only a whole run that verifies, leaving an anchor made at
    /// `now`; the count removed. (On PostgreSQL only the tables' owner may.)
    async fn purge_chain(&self, chain: Chain, cutoff: Millis, limit: u32, now: Millis) -> StoreResult<u64>;

    // Companies: the policy, the admins' report and removals.
    async fn company(&self, company_id: &str) -> StoreResult<Option<Company>>;
    async fn set_two_factor_policy(&self, company_id: &str, policy: TwoFactorPolicy, audit: &AuditEvent) -> StoreResult<()>;
    /// The company's users, by name.
    async fn users_of_company(&self, company_id: &str) -> StoreResult<Vec<UserRecord>>;
    /// The authenticator apps (confirmed or pending) of the company's users.
    async fn totp_of_company(&self, company_id: &str) -> StoreResult<Vec<(String, TotpFactor)>>;
    /// The passkeys of a user, or of a company's users, oldest first.
    async fn passkey_summaries(&self, scope: Scope<'_>) -> StoreResult<Vec<PasskeySummary>>;
    /// Renames one of the user's passkeys; false if not theirs.
    async fn rename_passkey(&self, user_id: &str, passkey_id: &str, name: &str) -> StoreResult<bool>;
    /// Removes the user's authenticator app and recovery codes (see [`Removal`]).
    async fn remove_totp(&self, removal: Removal<'_>) -> StoreResult<Removed>;
    /// Removes one of the user's passkeys (see [`Removal`]); "never the
    /// last factor" is checked under the user's row lock, so that two
    /// concurrent removals cannot both pass it.
    async fn remove_passkey(&self, passkey_id: &str, removal: Removal<'_>) -> StoreResult<Removed>;

    // SCA sessions.
    /// Opens a session if the limits allow it, with, in the same
    /// transaction, the SMS that announces it and the audit event.
    ///
    /// The checks, in this order; the first that refuses answers, and
    /// nothing is stored, sent, superseded or taken from any limit:
    /// 1. an `sms-otp` code for the same request sent less than its
    ///    resend wait ago: [`SessionOpened::TooSoon`];
    /// 2. the user's waiting sessions: [`LimitKind::OpenSessions`];
    /// 3. the partner's rate: [`LimitKind::PartnerSessions`];
    /// 4. the user's SMS rate, if an SMS is sent: [`LimitKind::Sms`].
    ///
    /// (docs/PROTOCOL.md section 8 states 2–4.) Backends may take their
    /// locks in another order (PostgreSQL takes the partner's shared row
    /// last), but answer in this one.
    async fn open_session(
        &self,
        new: NewSession<'_>,
        limits: &Limits,
        sms: Option<&OutgoingSms>,
        audit: &AuditEvent,
    ) -> StoreResult<SessionOpened>;
    async fn session_by_token(&self, hash: &SecretHash) -> StoreResult<Option<Session>>;
    /// The owner's newest waiting `sms-otp` session, the one bound to
    /// `fingerprint` first (another request's tells a changed request).
    async fn otp_session(&self, owner: &Owner, fingerprint: &Fingerprint) -> StoreResult<Option<OtpSession>>;
    /// The session behind an approval link with its user's passkeys and,
    /// if `ceremony` names a kind, its pending ceremony of that kind; one
    /// snapshot.
    async fn session_by_link(&self, link_hash: &SecretHash, ceremony: Option<CeremonyKind>) -> StoreResult<Option<LinkedSession>>;
    /// Records a poll of the owner's session (only a `mock` one if
    /// `mock_only`) and returns it, unless the previous poll was less than
    /// `min_gap_ms` ago. `None`: unknown, not the owner's, or too soon.
    async fn record_poll(
        &self,
        token_hash: &SecretHash,
        owner: &Owner,
        mock_only: bool,
        now: Millis,
        min_gap_ms: i64,
    ) -> StoreResult<Option<Session>>;
    /// Moves a waiting, unexpired session to `to`, with its audit event
    /// and, if given, the approval's evidence; false if it was not.
    async fn decide_session(
        &self,
        session_id: &str,
        to: State,
        now: Millis,
        audit: &AuditEvent,
        evidence: Option<&str>,
    ) -> StoreResult<bool>;
    /// The replay, in one transaction: consume the session if (and only
    /// if) it is allowed, fresh, the caller's and bound to this request,
    /// then run the action and remember its response for the idempotency key.
    async fn consume_and_run(&self, replay: Replay<'_>) -> StoreResult<ReplayOutcome>;
    /// The response remembered for the partner's idempotency key, if any.
    async fn remembered_response(&self, partner_id: &str, key: KeyWindow<'_>) -> StoreResult<Option<RememberedResponse>>;

    // Passkeys and ceremonies.
    async fn passkeys_of_user(&self, user_id: &str) -> StoreResult<Vec<StoredPasskey>>;
    /// Saves a ceremony's state, replacing an unfinished one of the same kind.
    async fn save_ceremony(&self, session_id: &str, kind: CeremonyKind, state_json: &str, now: Millis) -> StoreResult<()>;
    /// Drops a ceremony whose answer failed (its challenge is burnt), and
    /// records why.
    async fn discard_ceremony(&self, ceremony: &PendingCeremony, audit: &AuditEvent) -> StoreResult<()>;
    /// Reserves one attempt at the session's secret (the password asked
    /// by its link before a first passkey, or its SMS code) by a
    /// compare-and-set below `max`: `false` once `max` were made. An
    /// attempt is reserved before the secret is checked, so that
    /// concurrent guesses cannot exceed `max` together.
    async fn reserve_attempt(&self, session_id: &str, max: u32) -> StoreResult<bool>;
    /// Gives back the attempt of a right password.
    async fn refund_attempt(&self, session_id: &str) -> StoreResult<()>;
    /// Attempts left at the session's secret.
    async fn attempts_left(&self, session_id: &str, max: u32) -> StoreResult<u32>;
    /// In one transaction, while the ceremony's session waits: consume
    /// the ceremony, enrol the user's first passkey (a compare-and-set on
    /// the user's count), append it to the credential registry, store its
    /// SMS notice, log it. The session is not decided: it stays waiting
    /// for an assertion of the new passkey
    /// ([`Storage::record_passkey_use_and_allow`]).
    async fn enrol_first_passkey(&self, ceremony: &PendingCeremony, enrolment: Enrolment<'_>, audit: &AuditEvent) -> StoreResult<Approved>;
    /// In one transaction: consume the ceremony, move the passkey's
    /// counter forward (compare-and-set) with its backup flags, allow the
    /// session, keep the evidence, log it.
    async fn record_passkey_use_and_allow(
        &self,
        ceremony: &PendingCeremony,
        used: PasskeyUse<'_>,
        audit: &AuditEvent,
    ) -> StoreResult<Approved>;

    // Evidence.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// An SMS to the user (into the outbox) with its audit event, in one
    /// transaction.
    async fn append_notice(&self, sms: &OutgoingSms, event: &AuditEvent) -> StoreResult<()>;
    async fn audit_of_session(&self, session_id: &str) -> StoreResult<Vec<AuditRow>>;
    /// A user's or a company's events, newest first, a page at a time.
    async fn audit_log(&self, query: AuditQuery<'_>) -> StoreResult<Vec<AuditEntry>>;
    async fn evidence_of_session(&self, session_id: &str) -> StoreResult<Option<String>>;
    /// The credential registry's entries of a credential, oldest first:
    /// every binding of a passkey and every removal is appended there, in
    /// the transaction that makes it.
    async fn registry_of_credential(&self, credential_id: &[u8]) -> StoreResult<Vec<RegistryEntry>>;

    // Ledger and SMS.
    async fn transfers_of_company(&self, company_id: &str, limit: u32) -> StoreResult<Vec<shared::Transfer>>;

    // Retention.
    /// Deletes one batch of what is past its retention; safe to run from
    /// several processes at once.
    async fn purge(&self, before: PurgeBefore) -> StoreResult<Purged>;
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
