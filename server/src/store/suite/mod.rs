//! The store's test suite: what either database must do, written against
//! the [`Store`]'s operations only, one file per area of the store: the
//! tests of `store/sessions.rs` are in `suite/sessions.rs`, and so on.
//! Each file lists its tests once, in its `backends!` invocation at the
//! top, which runs every one of them on each database (SQLite, and
//! PostgreSQL when a test cluster is given: [`postgres_url`]); a new test
//! goes into its area's list. This file is the harness: a fresh database
//! of each kind ([`Fixture`]), and the fixtures and helpers the areas
//! share (a company with its users and a partner, an opened session, a
//! ceremony, a real passkey).
//!
//! Areas too small for a file of their own sit with the rule they serve:
//! `database.rs` holds what every area keeps across a reopening, and the
//! mode; `passkeys.rs` the account area's sign-in ceremony
//! (`store/account_passkeys.rs`); `browser_sessions.rs` trusted browsers
//! ended by a sign-out everywhere (`store/trusted.rs`); `sessions.rs` the
//! limits of opening a session (checked by `open_session`); `audit.rs`
//! the retention purge (`store/purge.rs`) with the chains' own.
//!
//! The races run many writers at once on a multi-threaded runtime, so
//! that a backend whose rule holds only because it serialises writers by
//! accident still has to hold it as a constraint or a compare-and-set.

use std::sync::Arc;

use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::Passkey;
use webauthn_rs::WebauthnBuilder;

use super::*;
use crate::ledger::{Action, NewTransfer};
use crate::model::{CeremonyKind, ClientInfo, Fingerprint, NewBrowserSession, PendingCeremony, RequestParts, Stage};
use crate::notify::sms::OutboxCopy;
use crate::notify::Notice;
use crate::password::PasswordHash;
use crate::phone::Phone;

const T0: Millis = Millis(1_800_000_000_000);

/// A fresh, empty database of the backend under test.
pub(super) struct Fixture {
    pub store: Store,
    url: String,
    options: StoreOptions,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl Fixture {
    /// The same database opened again, as by a new process: this store
    /// (its connections, its open group) is dropped first, so that only
    /// what was committed can be read back.
    async fn reopened(self) -> Fixture {
        let Fixture { store, url, options, _dir } = self;
        drop(store);
        let store = Store::open(&url, &options).await.unwrap();
        Fixture { store, url, options, _dir }
    }

    /// Runs `sql` on the database directly, as whoever holds the file or
    /// the tables' owner role could, around Passgate.
    async fn raw(&self, sql: &str) {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
            conn.execute_batch(sql).unwrap();
        } else {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.batch_execute(sql).await.unwrap();
        }
    }

    /// The one integer `sql` selects, read around Passgate (what is kept,
    /// where no operation reads it back).
    async fn raw_count(&self, sql: &str) -> i64 {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.query_row(sql, [], |row| row.get(0)).unwrap()
        } else {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(connection);
            client.query_one(sql, &[]).await.unwrap().get(0)
        }
    }

    /// `bytes` as a literal of the backend's SQL.
    fn blob(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        if self.url.starts_with("sqlite://") {
            format!("X'{hex}'")
        } else {
            format!("'\\x{hex}'::bytea")
        }
    }
}

async fn sqlite() -> Fixture {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let options = StoreOptions { durability: Durability::Normal, ..StoreOptions::new(&crate::sealed::SecretsKey::sandbox()) };
    let store = Store::open(&url, &options).await.unwrap();
    Fixture { store, url, options, _dir: Some(dir) }
}

/// A fresh database on the test cluster that `make test` starts
/// (`tools/with-postgres.sh`), named in `PASSGATE_TEST_POSTGRES`; `None`,
/// with a printed notice, when there is none (plain `cargo test`), unless
/// `PASSGATE_TEST_REQUIRE_POSTGRES` is set (`make test` sets it).
pub(crate) async fn postgres_url() -> Option<String> {
    let Ok(cluster) = std::env::var("PASSGATE_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("PASSGATE_TEST_REQUIRE_POSTGRES").is_none(),
            "PASSGATE_TEST_POSTGRES is not set: run the tests with `make test` (tools/with-postgres.sh starts a cluster)"
        );
        eprintln!("skipped: no PostgreSQL test cluster (PASSGATE_TEST_POSTGRES); `make test` runs these");
        return None;
    };
    let name = format!("passgate_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&cluster, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (server, _) = cluster.rsplit_once('/').unwrap();
    Some(format!("{server}/{name}"))
}

async fn postgres() -> Option<Fixture> {
    let url = postgres_url().await?;
    let options = StoreOptions::new(&crate::sealed::SecretsKey::sandbox());
    let store = Store::open(&url, &options).await.unwrap();
    Some(Fixture { store, url, options, _dir: None })
}

/// A company with two users and a partner.
struct World {
    partner: String,
    alice: Owner,
    bob: Owner,
    company: String,
}

async fn world(store: &Store) -> World {
    let company = store.ensure_company("C", T0).await.unwrap();
    let alice = store.ensure_user(&company, &Phone::parse("+33600000001").unwrap(), "Alice", T0).await.unwrap();
    let bob = store.ensure_user(&company, &Phone::parse("+33600000002").unwrap(), "Bob", T0).await.unwrap();
    let partner = store.ensure_partner("P", false, T0).await.unwrap();
    World {
        alice: Owner { partner_id: partner.clone(), user_id: alice },
        bob: Owner { partner_id: partner.clone(), user_id: bob },
        partner,
        company,
    }
}

fn caller(world: &World, owner: &Owner) -> Caller {
    Caller {
        owner: owner.clone(),
        partner_name: "P".into(),
        embed: false,
        company_id: world.company.clone(),
        phone: Phone::parse("+33600000001").unwrap(),
    }
}

fn action() -> Action {
    let request = shared::TransferRequest {
        amount: "1.00".into(),
        currency: "EUR".into(),
        beneficiary: shared::BeneficiaryInput { name: "ACME".into(), iban: "FR7630006000011234567890189".into() },
        reference: None,
    };
    Action::Transfer(NewTransfer::try_from(&request).unwrap())
}

fn fingerprint(body: &str) -> Fingerprint {
    Fingerprint::of(&RequestParts { method: "POST", path: "/v2/sepa/transfers", query: None, preference: None, body: body.as_bytes() })
}

const GENEROUS: Limits = Limits {
    open_sessions_per_user: 1_000,
    sms_per_user: Rate { burst: 1_000, interval_ms: 1 },
    sessions_per_partner: Rate { burst: 1_000, interval_ms: 1 },
    pending_push: PendingPush::Supersede,
};

/// Opens a session for `owner`; returns (id, token hash).
async fn open(store: &Store, owner: &Owner, seed: u8, limits: &Limits, sms: bool, at: Millis) -> (SessionOpened, SecretHash) {
    let token = SecretHash([seed; 32]);
    let action = action();
    let new = NewSession {
        token_hash: token,
        link_hash: Some(SecretHash([seed.wrapping_add(128); 32])),
        owner,
        method: Method::Passkey,
        action: &action,
        fingerprint: fingerprint("{}"),
        created_at: at,
        expires_at: at.plus_millis(crate::model::SESSION_LIFETIME_MS),
        otp: None,
    };
    let message = sms.then(|| {
        let url = format!("https://x/sca/{seed}");
        Notice::Sms(OutgoingSms::approval_link(Phone::parse("+33600000001").unwrap(), "P", url, at, OutboxCopy::Whole))
    });
    let event = AuditEvent::session_created(owner, "transfer.single.create", Method::Passkey, &ClientInfo::default(), at);
    (store.open_session(new, limits, message.as_ref(), &event).await.unwrap(), token)
}

async fn opened(store: &Store, owner: &Owner, seed: u8) -> (String, SecretHash) {
    match open(store, owner, seed, &GENEROUS, false, T0).await {
        (SessionOpened::Opened(id), token) => (id, token),
        (other, _) => panic!("not opened: {other:?}"),
    }
}

fn event(session_id: &str, owner: &Owner) -> AuditEvent {
    let mut event = AuditEvent::limit_reached(owner, "test", &ClientInfo::default(), T0);
    event.session_id = Some(session_id.to_owned());
    event
}

/// A real passkey, registered by a software authenticator.
fn passkey(authenticator: &mut SoftPasskey) -> Passkey {
    let origin = Url::parse("http://localhost:8080").unwrap();
    let webauthn = WebauthnBuilder::new("localhost", &origin).unwrap().build().unwrap();
    let (options, state) = webauthn.start_passkey_registration(uuid::Uuid::new_v4(), "u", "U", None).unwrap();
    let answer = authenticator.do_registration(origin, options).unwrap();
    webauthn.finish_passkey_registration(&answer, &state).unwrap()
}

/// Saves a ceremony for the session behind `link` and reads it back.
async fn ceremony(store: &Store, link: &SecretHash, kind: CeremonyKind) -> PendingCeremony {
    let session = store.session_by_link(link, None, Lookup::Settled).await.unwrap().unwrap().session;
    store.save_ceremony(&session.id, kind, "{}", T0).await.unwrap();
    store.session_by_link(link, Some(kind), Lookup::Settled).await.unwrap().unwrap().ceremony.unwrap()
}

/// The link hash of a session opened with `seed`.
fn link(seed: u8) -> SecretHash {
    SecretHash([seed.wrapping_add(128); 32])
}

/// Enrols a first passkey for `owner` through a session; returns it stored.
async fn enrolled(store: &Store, owner: &Owner, seed: u8) -> StoredPasskey {
    let (id, _) = opened(store, owner, seed).await;
    let ceremony = ceremony(store, &link(seed), CeremonyKind::Registration).await;
    let key = passkey(&mut SoftPasskey::new(true));
    let enrolment = Enrolment { user_id: &owner.user_id, passkey: &key, sign_count: 5, attestation: None, notice: None, now: T0 };
    assert_eq!(store.enrol_first_passkey(&ceremony, enrolment, &event(&id, owner)).await.unwrap(), Approved::Yes);
    store.passkeys_of_user(&owner.user_id).await.unwrap().remove(0)
}

fn hash_of(password: &str) -> PasswordHash {
    // Stored hashes only: the store neither hashes nor checks.
    PasswordHash::from_stored(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${password}"))
}

fn rates(keys: &[&str], rate: Rate) -> Vec<(String, Rate)> {
    keys.iter().map(|k| ((*k).to_owned(), rate)).collect()
}

fn browser(token: u8, user_id: &str, stage: Stage, replaces: Option<u8>, now: Millis) -> NewBrowserSession<'_> {
    let proofs = crate::binding::Proofs::default();
    NewBrowserSession { token_hash: SecretHash([token; 32]), user_id, stage, replaces: replaces.map(|r| SecretHash([r; 32])), proofs, now }
}

fn account_event(kind: crate::model::AuditKind, user_id: &str) -> AuditEvent {
    AuditEvent::account(kind, Some(user_id), serde_json::json!({}), &ClientInfo::default(), T0)
}

fn notice_sms(to: &str) -> OutgoingSms {
    OutgoingSms::factor_removed(Phone::parse(to).unwrap(), "a passkey", false, "https://x/account/security", T0, OutboxCopy::Whole)
}

async fn add_account_passkey(store: &Store, user_id: &str) -> String {
    let key = passkey(&mut SoftPasskey::new(true));
    let audit = account_event(crate::model::AuditKind::FactorAdded, user_id);
    let sms = OutgoingSms::factor_added(Phone::parse("+33600000009").unwrap(), "a passkey", "https://x", T0, OutboxCopy::Whole);
    let new = NewPasskey { user_id, passkey: &key, attestation: Some("o2NmbXRk"), sign_count: 0, name: None, now: T0 };
    assert!(store.add_passkey(new, FactorNotice { audit: &audit, sms: &sms }).await.unwrap());
    let id = key.cred_id().clone();
    store.passkeys_of_user(user_id).await.unwrap().into_iter().find(|p| *p.passkey.cred_id() == id).unwrap().id
}

/// Runs each of an area's tests (an `async fn(Fixture)` of that file) on
/// each database: `on_sqlite::name` and `on_postgres::name` (skipped, with
/// a notice, when there is no test cluster).
macro_rules! backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test($crate::store::suite::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(fixture) = $crate::store::suite::postgres().await {
                        super::$test(fixture).await;
                    }
                }
            )*
        }
    };
}

mod audit;
mod browser_sessions;
mod company;
mod database;
mod directory;
mod ledger;
mod limits;
mod paired_phones;
mod passkeys;
mod phone_confirmations;
mod push_delivery;
mod sessions;
mod sms_delivery;
mod totp;
