//! The store's test suite: what either database must do, written against
//! the [`Store`]'s operations only. Each backend runs every test (see the
//! `backends!` list at the bottom). The races run many writers at once on
//! a multi-threaded runtime, so that a backend whose rule holds only
//! because it serialises writers by accident still has to hold it as a
//! constraint or a compare-and-set.

use std::sync::Arc;

use futures::future::join_all;
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs::prelude::Passkey;
use webauthn_rs::WebauthnBuilder;

use super::*;
use crate::chain::Chain;
use crate::email::Email;
use crate::ledger::{Action, Created, NewTransfer};
use crate::model::{
    CeremonyKind, ClientInfo, Fingerprint, Liveness, NewBrowserSession, PendingCeremony, RequestParts, Role, Stage, State, TotpAcceptance,
    TotpAttempt, UserAttempt,
};
use crate::password::PasswordHash;
use crate::phone::Phone;
use crate::sms::OutboxCopy;

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
    let options = StoreOptions { durability: Durability::Normal, ..StoreOptions::new(&crate::sealed::SealingKey::sandbox()) };
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
    let options = StoreOptions::new(&crate::sealed::SealingKey::sandbox());
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
        OutgoingSms::approval_link(Phone::parse("+33600000001").unwrap(), "P", format!("https://x/sca/{seed}"), at, OutboxCopy::Whole)
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
    let session = store.session_by_link(link, None).await.unwrap().unwrap().session;
    store.save_ceremony(&session.id, kind, "{}", T0).await.unwrap();
    store.session_by_link(link, Some(kind)).await.unwrap().unwrap().ceremony.unwrap()
}

/// The link hash of a session opened with `seed`.
fn link(seed: u8) -> SecretHash {
    SecretHash([seed.wrapping_add(128); 32])
}

macro_rules! backends {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(super::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(fixture) = super::postgres().await {
                        super::$test(fixture).await;
                    }
                }
            )*
        }
    };
}

backends!(
    a_reopened_database_keeps_its_data,
    companies_are_unique_by_name_under_concurrent_writers,
    the_database_remembers_the_mode_it_was_first_used_in,
    two_concurrent_first_passkeys_of_one_user_enrol_one,
    a_credential_is_never_enrolled_to_two_users,
    a_first_passkey_enrols_and_leaves_its_session_waiting_for_an_assertion,
    concurrent_finishes_of_one_registration_enrol_once,
    a_closed_session_enrols_nothing,
    a_verified_ceremony_is_consumed_once_under_concurrent_finishes,
    the_signature_counter_only_moves_forward,
    concurrent_replays_run_the_action_once,
    an_idempotency_key_answers_its_request_again_and_refuses_another,
    concurrent_replays_with_one_idempotency_key_run_once,
    open_sessions_per_user_are_limited,
    sms_and_partner_rates_are_limited_and_a_refusal_takes_nothing,
    the_purge_removes_what_ran_out_and_keeps_records_and_evidence,
    credentials_are_kept_and_an_email_signs_in_one_user_only,
    concurrent_password_attempts_never_exceed_the_maximum,
    the_passkey_notice_is_stored_with_the_enrolment_only,
    a_user_is_found_by_email,
    rates_are_taken_all_or_none_and_given_back,
    concurrent_takers_never_exceed_a_rate,
    a_browser_session_lives_while_used_and_ends_when_idle_or_old,
    a_browser_session_moves_on_under_a_new_secret_and_ends_everywhere,
    an_authenticator_app_is_pending_until_confirmed_then_kept,
    a_code_step_is_accepted_once_even_under_concurrent_sign_ins,
    five_reserved_attempts_in_a_row_lock_the_app_until_the_lock_ends,
    recovery_codes_are_stored_on_confirmation_and_used_once,
    a_sign_in_ceremony_is_taken_once_under_concurrent_finishes_and_purged_unanswered,
    a_user_is_found_by_webauthn_handle,
    a_confirmation_marks_only_the_key_it_checked,
    never_the_last_factor_under_concurrent_removals,
    a_removed_factor_ends_the_other_sessions_and_every_trusted_browser_and_tells_the_user,
    signing_out_everywhere_also_ends_trusted_browsers,
    a_step_up_code_waits_between_sends_is_used_once_and_burns_after_five_wrong,
    the_credential_registry_keeps_each_binding_and_removal_and_refuses_changes,
    proofs_are_kept_with_the_session_and_recorded_one_by_one,
    a_users_failures_add_up_across_codes_and_block_in_a_lengthening_series,
    the_audit_chain_names_the_first_row_changed_removed_or_forged,
    the_purge_removes_whole_verified_prefixes_and_leaves_an_anchor,
    a_poll_within_the_gap_is_refused_even_when_its_clock_read_came_first,
    a_replacing_app_takes_the_old_ones_place_only_with_a_code_of_its_own,
    recovery_codes_are_renewed_only_for_a_confirmed_app,
    a_code_asked_again_too_soon_is_told_so_before_any_limit,
    combined_limits_answer_in_one_order_and_a_refusal_takes_nothing,
    rates_that_refuse_together_answer_the_longest_wait_whatever_their_order,
    a_rate_named_twice_is_taken_twice,
);

/// Every kind of record written before the database is closed is read
/// back by a store opened afresh on it: the directory, credentials and
/// access tokens, sessions and their decisions, passkeys and the
/// credential registry, the audit log and its chain, evidence, transfers,
/// the outbox, browser sessions, apps, failures and rates.
async fn a_reopened_database_keeps_its_data(fixture: Fixture) {
    use crate::model::AuditKind;
    let store = &fixture.store;
    assert_eq!(store.claim_mode("production").await.unwrap(), "production");
    let w = world(store).await;
    let email = Email::parse("alice@example.com").unwrap();
    assert_eq!(store.set_credentials(&w.alice.user_id, &email, &hash_of("a"), Role::Admin).await.unwrap(), CredentialsSet::Yes);
    store.insert_access_token(&SecretHash([9; 32]), &w.partner, &w.alice.user_id, T0).await.unwrap();
    // A first passkey, through a session that stays waiting.
    let key = enrolled(store, &w.alice, 1).await;
    let waiting = store.session_by_token(&SecretHash([1; 32])).await.unwrap().unwrap().id;
    // A session announced by SMS, allowed with evidence, replayed: a transfer.
    let (SessionOpened::Opened(ran), token) = open(store, &w.alice, 2, &GENEROUS, true, T0).await else { panic!("not opened") };
    assert!(store.decide_session(&ran, State::Allow, T0, &event(&ran, &w.alice), Some(r#"{"kind":"kept"}"#)).await.unwrap());
    let (caller, action, fp) = (caller(&w, &w.alice), action(), fingerprint("{}"));
    let replay = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: None, now: T0 };
    assert!(matches!(store.consume_and_run(replay).await.unwrap(), ReplayOutcome::Ran(_)));
    // The account area: a browser session, a pending app; a failure, a rate.
    let alice = w.alice.user_id.as_str();
    store.open_browser_session(browser(3, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice)).await.unwrap();
    assert!(store.begin_totp(alice, "sealed-key", T0).await.unwrap());
    assert_eq!(store.reserve_user_attempt(&w.bob.user_id, 5, 60_000, T0).await.unwrap(), UserAttempt::Reserved { failures: 1 });
    let rate = rates(&["kept"], Rate { burst: 1, interval_ms: 60_000 });
    assert_eq!(store.take_rates(&rate, T0).await.unwrap(), Ok(()));
    let audit_chain = store.chain_state(Chain::AuditEvents).await.unwrap();
    let evidence_chain = store.chain_state(Chain::ApprovalEvidence).await.unwrap();
    assert!(audit_chain.head_seq > 0 && evidence_chain.head_seq > 0, "{audit_chain:?} {evidence_chain:?}");

    let fixture = fixture.reopened().await;
    let store = &fixture.store;
    assert_eq!(store.claim_mode("sandbox").await.unwrap(), "production");
    assert_eq!(store.ensure_partner("P", false, T0).await.unwrap(), w.partner);
    assert_eq!(store.ensure_company("C", T0).await.unwrap(), w.company);
    assert_eq!(store.ensure_user(&w.company, &Phone::parse("+33600000001").unwrap(), "Alice", T0).await.unwrap(), alice);
    let user = store.user(alice).await.unwrap().unwrap();
    assert_eq!((user.email.as_ref(), user.password.as_ref(), user.role), (Some(&email), Some(&hash_of("a")), Role::Admin));
    assert_eq!(store.user_by_email(&email).await.unwrap().map(|u| u.id).as_deref(), Some(alice));
    assert_eq!(store.caller_by_access_token(&SecretHash([9; 32])).await.unwrap().unwrap().owner, w.alice);
    let passkeys = store.passkeys_of_user(alice).await.unwrap();
    assert_eq!(
        passkeys.iter().map(|p| (p.id.as_str(), p.passkey.cred_id(), p.sign_count)).collect::<Vec<_>>(),
        [(key.id.as_str(), key.passkey.cred_id(), 5)]
    );
    assert_eq!(store.registry_of_credential(key.passkey.cred_id().as_ref()).await.unwrap().len(), 1);
    let session = |seed: u8| async move { store.session_by_token(&SecretHash([seed; 32])).await.unwrap().map(|s| (s.id, s.state)) };
    assert_eq!(session(1).await, Some((waiting.clone(), State::Waiting)));
    assert_eq!(session(2).await, Some((ran.clone(), State::Consumed)));
    assert_eq!(store.audit_of_session(&waiting).await.unwrap().len(), 2, "opened, then the enrolment");
    assert_eq!(store.audit_of_session(&ran).await.unwrap().len(), 2, "opened, then allowed");
    assert_eq!(store.evidence_of_session(&ran).await.unwrap().as_deref(), Some(r#"{"kind":"kept"}"#));
    assert_eq!(store.chain_state(Chain::AuditEvents).await.unwrap(), audit_chain);
    assert_eq!(store.chain_state(Chain::ApprovalEvidence).await.unwrap(), evidence_chain);
    assert_eq!(store.transfers_of_company(&w.company, 10).await.unwrap().len(), 1);
    assert_eq!(store.sms_outbox(Some("+33600000001"), 10).await.unwrap().len(), 1);
    let alive = Liveness { now: T0, idle_ms: 300_000, max_age_ms: 600_000 };
    assert_eq!(store.browser_session(&SecretHash([3; 32]), alive, false).await.unwrap().map(|b| b.user_id).as_deref(), Some(alice));
    assert!(store.totp_of_user(alice).await.unwrap().is_some(), "the pending app");
    assert_eq!(store.reserve_user_attempt(&w.bob.user_id, 5, 60_000, T0).await.unwrap(), UserAttempt::Reserved { failures: 2 });
    assert_eq!(store.take_rates(&rate, T0).await.unwrap(), Err(60_000), "the admission taken before");
}

async fn companies_are_unique_by_name_under_concurrent_writers(fixture: Fixture) {
    let tasks = (0..20).map(|_| {
        let store = fixture.store.clone();
        tokio::spawn(async move { store.ensure_company("Same SAS", T0).await.unwrap() })
    });
    let ids: std::collections::HashSet<String> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(ids.len(), 1);
}

async fn the_database_remembers_the_mode_it_was_first_used_in(fixture: Fixture) {
    assert_eq!(fixture.store.claim_mode("production").await.unwrap(), "production");
    assert_eq!(fixture.store.claim_mode("sandbox").await.unwrap(), "production");
}

async fn two_concurrent_first_passkeys_of_one_user_enrol_one(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let mut tasks = Vec::new();
    for seed in [1u8, 2] {
        let (id, _) = opened(store, &w.alice, seed).await;
        let ceremony = ceremony(store, &link(seed), CeremonyKind::Registration).await;
        let key = passkey(&mut SoftPasskey::new(true));
        let (store, user, owner) = (store.clone(), w.alice.user_id.clone(), w.alice.clone());
        tasks.push(tokio::spawn(async move {
            let enrolment = Enrolment { user_id: &user, passkey: &key, sign_count: 0, attestation: None, notice: None, now: T0 };
            store.enrol_first_passkey(&ceremony, enrolment, &event(&id, &owner)).await.unwrap()
        }));
    }
    let mut outcomes: Vec<Approved> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Approved::PasskeyExists, Approved::Yes]);
    assert_eq!(store.passkeys_of_user(&w.alice.user_id).await.unwrap().len(), 1);
}

async fn a_credential_is_never_enrolled_to_two_users(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let key = passkey(&mut SoftPasskey::new(true));
    let (alice, _) = opened(store, &w.alice, 1).await;
    let (bob, _) = opened(store, &w.bob, 2).await;
    let first = ceremony(store, &link(1), CeremonyKind::Registration).await;
    let second = ceremony(store, &link(2), CeremonyKind::Registration).await;
    let enrol = |user| Enrolment { user_id: user, passkey: &key, sign_count: 0, attestation: None, notice: None, now: T0 };
    let approved = store.enrol_first_passkey(&first, enrol(&w.alice.user_id), &event(&alice, &w.alice)).await.unwrap();
    assert_eq!(approved, Approved::Yes);
    let refused = store.enrol_first_passkey(&second, enrol(&w.bob.user_id), &event(&bob, &w.bob)).await.unwrap();
    assert_eq!(refused, Approved::CredentialInUse);
    // The refusal changed nothing: Bob has no passkey, his session still waits.
    assert!(store.passkeys_of_user(&w.bob.user_id).await.unwrap().is_empty());
    let session = store.session_by_token(&SecretHash([2; 32])).await.unwrap().unwrap();
    assert_eq!(session.state, State::Waiting);
}

/// A registration signs nothing of the approval: the enrolment leaves the
/// session waiting, keeps no evidence row, and only an assertion of the
/// new passkey allows it (keeping the session's one evidence row).
async fn a_first_passkey_enrols_and_leaves_its_session_waiting_for_an_assertion(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let (id, token) = opened(store, &w.alice, 1).await;
    let registration = ceremony(store, &link(1), CeremonyKind::Registration).await;
    let key = passkey(&mut SoftPasskey::new(true));
    let enrolment = Enrolment { user_id: &w.alice.user_id, passkey: &key, sign_count: 0, attestation: Some("att"), notice: None, now: T0 };
    assert_eq!(store.enrol_first_passkey(&registration, enrolment, &event(&id, &w.alice)).await.unwrap(), Approved::Yes);

    assert_eq!(store.session_by_token(&token).await.unwrap().unwrap().state, State::Waiting);
    assert!(store.evidence_of_session(&id).await.unwrap().is_none());
    assert_eq!(store.audit_of_session(&id).await.unwrap().len(), 2, "opened, then the enrolment");
    assert_eq!(store.registry_of_credential(key.cred_id().as_ref()).await.unwrap().len(), 1);
    // The ceremony was consumed with the enrolment.
    let again = Enrolment { user_id: &w.alice.user_id, passkey: &key, sign_count: 0, attestation: None, notice: None, now: T0 };
    assert_eq!(store.enrol_first_passkey(&registration, again, &event(&id, &w.alice)).await.unwrap(), Approved::CeremonyGone);

    let stored = store.passkeys_of_user(&w.alice.user_id).await.unwrap().remove(0);
    let assertion = ceremony(store, &link(1), CeremonyKind::Authentication).await;
    let used = PasskeyUse { passkey: &stored, new_sign_count: 1, evidence: Some(r#"{"kind":"authentication"}"#), now: T0 };
    assert_eq!(store.record_passkey_use_and_allow(&assertion, used, &event(&id, &w.alice)).await.unwrap(), Approved::Yes);
    assert_eq!(store.session_by_token(&token).await.unwrap().unwrap().state, State::Allow);
    assert_eq!(store.evidence_of_session(&id).await.unwrap().as_deref(), Some(r#"{"kind":"authentication"}"#));
}

async fn concurrent_finishes_of_one_registration_enrol_once(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let (id, _) = opened(store, &w.alice, 1).await;
    let registration = ceremony(store, &link(1), CeremonyKind::Registration).await;
    let tasks = (0..8).map(|_| {
        let key = passkey(&mut SoftPasskey::new(true));
        let (store, ceremony, user, e) = (store.clone(), registration.clone(), w.alice.user_id.clone(), event(&id, &w.alice));
        tokio::spawn(async move {
            let enrolment = Enrolment { user_id: &user, passkey: &key, sign_count: 0, attestation: None, notice: None, now: T0 };
            store.enrol_first_passkey(&ceremony, enrolment, &e).await.unwrap()
        })
    });
    let outcomes: Vec<Approved> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Approved::Yes).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Approved::Yes | Approved::CeremonyGone)), "{outcomes:?}");
    assert_eq!(store.passkeys_of_user(&w.alice.user_id).await.unwrap().len(), 1);
    assert_eq!(store.audit_of_session(&id).await.unwrap().len(), 2, "one enrolment logged");
}

async fn a_closed_session_enrols_nothing(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let notice = OutgoingSms::passkey_added(Phone::parse("+33600000001").unwrap(), "https://x/account/security", T0, OutboxCopy::Whole);
    let key = passkey(&mut SoftPasskey::new(true));
    let enrol = |now| Enrolment { user_id: &w.alice.user_id, passkey: &key, sign_count: 0, attestation: None, notice: Some(&notice), now };
    // Denied meanwhile.
    let (denied, _) = opened(store, &w.alice, 1).await;
    let registration = ceremony(store, &link(1), CeremonyKind::Registration).await;
    assert!(store.decide_session(&denied, State::Deny, T0, &event(&denied, &w.alice), None).await.unwrap());
    assert_eq!(store.enrol_first_passkey(&registration, enrol(T0), &event(&denied, &w.alice)).await.unwrap(), Approved::SessionClosed);
    // Ran out meanwhile.
    let (expired, _) = opened(store, &w.alice, 2).await;
    let registration = ceremony(store, &link(2), CeremonyKind::Registration).await;
    let late = T0.plus_millis(crate::model::SESSION_LIFETIME_MS);
    assert_eq!(store.enrol_first_passkey(&registration, enrol(late), &event(&expired, &w.alice)).await.unwrap(), Approved::SessionClosed);
    // Nothing of either attempt stayed.
    assert!(store.passkeys_of_user(&w.alice.user_id).await.unwrap().is_empty());
    assert!(store.registry_of_credential(key.cred_id().as_ref()).await.unwrap().is_empty());
    assert!(store.sms_outbox(Some("+33600000001"), 10).await.unwrap().is_empty());
    assert_eq!(store.audit_of_session(&denied).await.unwrap().len(), 2, "opened and denied");
    assert_eq!(store.audit_of_session(&expired).await.unwrap().len(), 1, "opened");
    assert!(store.session_by_link(&link(2), Some(CeremonyKind::Registration)).await.unwrap().unwrap().ceremony.is_some(), "not consumed");
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

async fn a_verified_ceremony_is_consumed_once_under_concurrent_finishes(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let stored = enrolled(store, &w.alice, 1).await;
    let (id, _) = opened(store, &w.alice, 2).await;
    let ceremony = ceremony(store, &link(2), CeremonyKind::Authentication).await;
    let tasks = (0..8u32).map(|i| {
        let (store, ceremony, stored, e) = (store.clone(), ceremony.clone(), stored.clone(), event(&id, &w.alice));
        tokio::spawn(async move {
            let used = PasskeyUse { passkey: &stored, new_sign_count: 10 + i, evidence: None, now: T0 };
            store.record_passkey_use_and_allow(&ceremony, used, &e).await.unwrap()
        })
    });
    let outcomes: Vec<Approved> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().filter(|o| **o == Approved::Yes).count(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, Approved::Yes | Approved::CeremonyGone)), "{outcomes:?}");
}

async fn the_signature_counter_only_moves_forward(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let stored = enrolled(store, &w.alice, 1).await;
    assert_eq!(stored.sign_count, 5);
    // Two approvals read the passkey at counter 5; the one signed 7
    // commits first; the one signed 6 must not write its lower counter.
    let (high, _) = opened(store, &w.alice, 2).await;
    let (low, _) = opened(store, &w.alice, 3).await;
    let high_ceremony = ceremony(store, &link(2), CeremonyKind::Authentication).await;
    let low_ceremony = ceremony(store, &link(3), CeremonyKind::Authentication).await;
    let use_at = |count: u32| PasskeyUse { passkey: &stored, new_sign_count: count, evidence: None, now: T0 };
    assert_eq!(store.record_passkey_use_and_allow(&high_ceremony, use_at(7), &event(&high, &w.alice)).await.unwrap(), Approved::Yes);
    assert_eq!(
        store.record_passkey_use_and_allow(&low_ceremony, use_at(6), &event(&low, &w.alice)).await.unwrap(),
        Approved::CounterNotAdvanced
    );
    assert_eq!(store.passkeys_of_user(&w.alice.user_id).await.unwrap()[0].sign_count, 7);
    // The refusal changed nothing: its ceremony is still there, its session waits.
    let again = store.session_by_link(&link(3), Some(CeremonyKind::Authentication)).await.unwrap().unwrap().ceremony.unwrap();
    assert_eq!(again.id, low_ceremony.id);
    assert_eq!(
        store.record_passkey_use_and_allow(&again, use_at(7), &event(&low, &w.alice)).await.unwrap(),
        Approved::CounterNotAdvanced,
        "an already-used counter value is refused"
    );
    assert_eq!(store.session_by_token(&SecretHash([3; 32])).await.unwrap().unwrap().state, State::Waiting);
    assert_eq!(store.record_passkey_use_and_allow(&again, use_at(8), &event(&low, &w.alice)).await.unwrap(), Approved::Yes);
}

async fn concurrent_replays_run_the_action_once(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let (id, token) = opened(store, &w.alice, 1).await;
    assert!(store.decide_session(&id, State::Allow, T0, &event(&id, &w.alice), None).await.unwrap());
    let caller = caller(&w, &w.alice);
    let action = action();
    let fp = fingerprint("{}");
    let tasks = (0..20).map(|_| {
        let (store, caller, action) = (store.clone(), caller.clone(), action.clone());
        tokio::spawn(async move {
            let replay = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: None, now: T0 };
            store.consume_and_run(replay).await.unwrap()
        })
    });
    let outcomes: Vec<ReplayOutcome> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, ReplayOutcome::Ran(_))).count(), 1);
    assert_eq!(store.transfers_of_company(&w.company, 10).await.unwrap().len(), 1);
}

async fn an_idempotency_key_answers_its_request_again_and_refuses_another(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let caller = caller(&w, &w.alice);
    let action = action();
    let key = KeyWindow { key: "k-1", not_before: Millis(T0.0 - 1) };
    let fp = fingerprint("{}");
    let (id, token) = opened(store, &w.alice, 1).await;
    store.decide_session(&id, State::Allow, T0, &event(&id, &w.alice), None).await.unwrap();
    let replay = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: Some(key), now: T0 };
    let ReplayOutcome::Ran(first) = store.consume_and_run(replay).await.unwrap() else { panic!("did not run") };
    let remembered = store.remembered_response(&w.partner, key).await.unwrap().unwrap();
    assert_eq!((remembered.fingerprint, &remembered.created), (fp, &first));
    let again = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: Some(key), now: T0 };
    assert_eq!(store.consume_and_run(again).await.unwrap(), ReplayOutcome::Remembered(first));
    let other = fingerprint("{\"other\":1}");
    let reused = Replay { token_hash: &token, caller: &caller, fingerprint: &other, action: &action, idempotency: Some(key), now: T0 };
    assert_eq!(store.consume_and_run(reused).await.unwrap(), ReplayOutcome::KeyReused);
    // The same key and request for another user of the partner: not theirs
    // to be answered with, and nothing runs.
    let (bob_session, bob_token) = opened(store, &w.bob, 9).await;
    store.decide_session(&bob_session, State::Allow, T0, &event(&bob_session, &w.bob), None).await.unwrap();
    let bob = self::caller(&w, &w.bob);
    let for_bob = Replay { token_hash: &bob_token, caller: &bob, fingerprint: &fp, action: &action, idempotency: Some(key), now: T0 };
    assert_eq!(store.consume_and_run(for_bob).await.unwrap(), ReplayOutcome::KeyReused);
    assert!(!store.remembered_response(&w.partner, key).await.unwrap().unwrap().answers(&w.bob, &fp));
    // Out of its window, the key is forgotten; another partner never saw it.
    let later = KeyWindow { key: "k-1", not_before: Millis(T0.0 + 1) };
    assert!(store.remembered_response(&w.partner, later).await.unwrap().is_none());
    assert!(store.remembered_response("another-partner", key).await.unwrap().is_none());
    assert_eq!(store.transfers_of_company(&w.company, 10).await.unwrap().len(), 1);
}

/// Ten allowed sessions replayed at once with one key (a partner retrying
/// a create through several sessions): one runs, the others get its answer.
async fn concurrent_replays_with_one_idempotency_key_run_once(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let mut tokens = Vec::new();
    for seed in 1..=10u8 {
        let (id, token) = opened(store, &w.alice, seed).await;
        store.decide_session(&id, State::Allow, T0, &event(&id, &w.alice), None).await.unwrap();
        tokens.push(token);
    }
    let tasks = tokens.into_iter().map(|token| {
        let (store, caller, action) = (store.clone(), caller(&w, &w.alice), action());
        tokio::spawn(async move {
            let key = KeyWindow { key: "same", not_before: Millis(T0.0 - 1) };
            let fp = fingerprint("{}");
            let replay = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: Some(key), now: T0 };
            store.consume_and_run(replay).await.unwrap()
        })
    });
    let outcomes: Vec<ReplayOutcome> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let ran: Vec<&Created> = outcomes.iter().filter_map(|o| if let ReplayOutcome::Ran(c) = o { Some(c) } else { None }).collect();
    assert_eq!(ran.len(), 1, "{outcomes:?}");
    assert!(outcomes.iter().all(|o| matches!(o, ReplayOutcome::Ran(c) | ReplayOutcome::Remembered(c) if c == ran[0])), "{outcomes:?}");
    assert_eq!(store.transfers_of_company(&w.company, 20).await.unwrap().len(), 1);
}

async fn open_sessions_per_user_are_limited(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let limits = Limits { open_sessions_per_user: 2, ..GENEROUS };
    assert!(matches!(open(store, &w.alice, 1, &limits, false, T0).await.0, SessionOpened::Opened(_)));
    assert!(matches!(open(store, &w.alice, 2, &limits, false, T0.plus_millis(10)).await.0, SessionOpened::Opened(_)));
    let (refused, _) = open(store, &w.alice, 3, &limits, false, T0.plus_millis(20)).await;
    assert_eq!(refused, SessionOpened::Limited { limit: LimitKind::OpenSessions, retry_after_ms: crate::model::SESSION_LIFETIME_MS - 20 });
    assert!(matches!(open(store, &w.bob, 4, &limits, false, T0).await.0, SessionOpened::Opened(_)), "another user is not limited");
    // A decided session is no longer open.
    let first = store.session_by_token(&SecretHash([1; 32])).await.unwrap().unwrap();
    store.decide_session(&first.id, State::Deny, T0, &event(&first.id, &w.alice), None).await.unwrap();
    assert!(matches!(open(store, &w.alice, 5, &limits, false, T0).await.0, SessionOpened::Opened(_)));
}

async fn sms_and_partner_rates_are_limited_and_a_refusal_takes_nothing(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let limits = Limits { sms_per_user: Rate { burst: 2, interval_ms: 60_000 }, ..GENEROUS };
    assert!(matches!(open(store, &w.alice, 1, &limits, true, T0).await.0, SessionOpened::Opened(_)));
    assert!(matches!(open(store, &w.alice, 2, &limits, true, T0).await.0, SessionOpened::Opened(_)));
    let (refused, _) = open(store, &w.alice, 3, &limits, true, T0).await;
    assert_eq!(refused, SessionOpened::Limited { limit: LimitKind::Sms, retry_after_ms: 60_000 });
    assert_eq!(store.sms_outbox(None, 10).await.unwrap().len(), 2, "the refused session sent nothing");
    assert!(store.session_by_token(&SecretHash([3; 32])).await.unwrap().is_none());
    assert!(matches!(open(store, &w.alice, 4, &limits, false, T0).await.0, SessionOpened::Opened(_)), "no SMS, no SMS limit");
    assert!(matches!(open(store, &w.alice, 5, &limits, true, T0.plus_millis(60_000)).await.0, SessionOpened::Opened(_)));

    let partner = Limits { sessions_per_partner: Rate { burst: 1, interval_ms: 1_000 }, ..GENEROUS };
    let fresh = Millis(T0.0 + 10_000_000);
    assert!(matches!(open(store, &w.alice, 6, &partner, false, fresh).await.0, SessionOpened::Opened(_)));
    let (refused, _) = open(store, &w.bob, 7, &partner, false, fresh).await;
    assert_eq!(refused, SessionOpened::Limited { limit: LimitKind::PartnerSessions, retry_after_ms: 1_000 });
    // Concurrent openings: exactly the burst gets through.
    let later = Millis(fresh.0 + 5_000);
    let burst = Limits { sessions_per_partner: Rate { burst: 3, interval_ms: 60_000 }, ..GENEROUS };
    let tasks = (0..10u8).map(|i| {
        let (store, owner) = (store.clone(), if i % 2 == 0 { w.alice.clone() } else { w.bob.clone() });
        tokio::spawn(async move { open(&store, &owner, 20 + i, &burst, false, later).await.0 })
    });
    let opened = join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(SessionOpened::Opened(_)))).count();
    assert_eq!(opened, 3);
}

/// Sends `owner` a one-time code (`sms-otp`, 30 s between two sends) for
/// the request `{}`: the code's session and its SMS.
async fn open_code(store: &Store, owner: &Owner, seed: u8, limits: &Limits, at: Millis) -> SessionOpened {
    let action = action();
    let new = NewSession {
        token_hash: SecretHash([seed; 32]),
        link_hash: None,
        owner,
        method: Method::SmsOtp,
        action: &action,
        fingerprint: fingerprint("{}"),
        created_at: at,
        expires_at: at.plus_millis(crate::model::SESSION_LIFETIME_MS),
        otp: Some(NewOtp { mac: SecretHash([seed.wrapping_add(64); 32]), resend_after_ms: 30_000 }),
    };
    let code = OutgoingSms::one_time_code(Phone::parse("+33600000001").unwrap(), "P", "pay", "123456", "x", at, OutboxCopy::Whole);
    let event = AuditEvent::session_created(owner, "transfer.single.create", Method::SmsOtp, &ClientInfo::default(), at);
    store.open_session(new, limits, Some(&code), &event).await.unwrap()
}

async fn a_code_asked_again_too_soon_is_told_so_before_any_limit(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let limits = Limits {
        open_sessions_per_user: 2,
        sms_per_user: Rate { burst: 2, interval_ms: 60_000 },
        sessions_per_partner: Rate { burst: 8, interval_ms: 60_000 },
    };
    assert!(matches!(open_code(store, &w.alice, 1, &limits, T0).await, SessionOpened::Opened(_)));
    assert!(matches!(open(store, &w.alice, 2, &limits, true, T0).await.0, SessionOpened::Opened(_)));
    // Alice is at her open sessions and her SMS: the code's own wait answers.
    let again = open_code(store, &w.alice, 3, &limits, T0.plus_millis(10_000)).await;
    assert_eq!(again, SessionOpened::TooSoon { retry_after_ms: 20_000 }, "open sessions and SMS are reached too");
    // Once the wait is over, the limits answer.
    let later = open_code(store, &w.alice, 4, &limits, T0.plus_millis(30_000)).await;
    assert_eq!(
        later,
        SessionOpened::Limited { limit: LimitKind::OpenSessions, retry_after_ms: crate::model::SESSION_LIFETIME_MS - 30_000 }
    );
    // Bob is at his SMS only: the same.
    let sms_only = Limits { open_sessions_per_user: 1_000, ..limits };
    assert!(matches!(open_code(store, &w.bob, 5, &sms_only, T0).await, SessionOpened::Opened(_)));
    assert!(matches!(open(store, &w.bob, 6, &sms_only, true, T0).await.0, SessionOpened::Opened(_)));
    let again = open_code(store, &w.bob, 7, &sms_only, T0.plus_millis(1_000)).await;
    assert_eq!(again, SessionOpened::TooSoon { retry_after_ms: 29_000 }, "the SMS rate is reached too");
    // Nothing was sent, stored or superseded by the refusals.
    assert_eq!(store.sms_outbox(None, 10).await.unwrap().len(), 4);
    for seed in [3, 4, 7] {
        assert!(store.session_by_token(&SecretHash([seed; 32])).await.unwrap().is_none());
    }
    for seed in [1, 5] {
        assert_eq!(store.session_by_token(&SecretHash([seed; 32])).await.unwrap().unwrap().state, State::Waiting);
    }
}

/// Open sessions, the partner's rate and the user's SMS in one opening:
/// the first refusing limit in that order answers, and no refusal takes
/// anything from the others.
async fn combined_limits_answer_in_one_order_and_a_refusal_takes_nothing(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let other = store.ensure_partner("Q", false, T0).await.unwrap();
    let alice_at_q = Owner { partner_id: other.clone(), user_id: w.alice.user_id.clone() };
    let bob_at_q = Owner { partner_id: other, user_id: w.bob.user_id.clone() };
    let limits = Limits {
        open_sessions_per_user: 3,
        sms_per_user: Rate { burst: 2, interval_ms: 60_000 },
        sessions_per_partner: Rate { burst: 2, interval_ms: 60_000 },
    };
    let limited = |limit, retry_after_ms| SessionOpened::Limited { limit, retry_after_ms };
    // Alice spends her SMS and P's sessions, and reaches her open sessions through Q.
    assert!(matches!(open(store, &w.alice, 1, &limits, true, T0).await.0, SessionOpened::Opened(_)));
    assert!(matches!(open(store, &w.alice, 2, &limits, true, T0).await.0, SessionOpened::Opened(_)));
    let (third, _) = open(store, &alice_at_q, 3, &limits, false, T0).await;
    let SessionOpened::Opened(third) = third else { panic!("not opened: {third:?}") };
    // All three refuse: open sessions answers.
    let all = open(store, &w.alice, 4, &limits, true, T0).await.0;
    assert_eq!(all, limited(LimitKind::OpenSessions, crate::model::SESSION_LIFETIME_MS));
    store.decide_session(&third, State::Deny, T0, &event(&third, &alice_at_q), None).await.unwrap();
    // The partner's rate and the SMS refuse: the partner's rate answers.
    assert_eq!(open(store, &w.alice, 5, &limits, true, T0).await.0, limited(LimitKind::PartnerSessions, 60_000));
    // Through Q (one session left), only the SMS refuses, and takes nothing from Q.
    assert_eq!(open(store, &alice_at_q, 6, &limits, true, T0).await.0, limited(LimitKind::Sms, 60_000));
    assert!(matches!(open(store, &bob_at_q, 7, &limits, false, T0).await.0, SessionOpened::Opened(_)), "Q's last session");
    assert_eq!(open(store, &bob_at_q, 8, &limits, false, T0).await.0, limited(LimitKind::PartnerSessions, 60_000));
    // A minute gives back one SMS and one session of P: exactly one, as if
    // the refusals had never been.
    let minute = T0.plus_millis(60_000);
    assert!(matches!(open(store, &w.alice, 9, &limits, true, minute).await.0, SessionOpened::Opened(_)));
    assert_eq!(open(store, &w.bob, 10, &limits, true, minute).await.0, limited(LimitKind::PartnerSessions, 60_000));
    let first = store.session_by_token(&SecretHash([1; 32])).await.unwrap().unwrap().id;
    store.decide_session(&first, State::Deny, minute, &event(&first, &w.alice), None).await.unwrap();
    assert_eq!(open(store, &alice_at_q, 11, &limits, true, minute).await.0, limited(LimitKind::Sms, 60_000));
    assert_eq!(store.sms_outbox(None, 10).await.unwrap().len(), 3, "the refused openings sent nothing");
    for seed in [4, 5, 6, 8, 10, 11] {
        assert!(store.session_by_token(&SecretHash([seed; 32])).await.unwrap().is_none(), "{seed} was stored");
    }
}

async fn the_purge_removes_what_ran_out_and_keeps_records_and_evidence(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    // Ran out unused, with a pending ceremony and an SMS.
    let (expired, _) = match open(store, &w.alice, 1, &GENEROUS, true, T0).await {
        (SessionOpened::Opened(id), token) => (id, token),
        (other, _) => panic!("{other:?}"),
    };
    store.save_ceremony(&expired, CeremonyKind::Authentication, "{}", T0).await.unwrap();
    store.append_audit(&event(&expired, &w.alice)).await.unwrap();
    // Used by its transfer: the record of it stays.
    let (used, token) = opened(store, &w.alice, 2).await;
    store.decide_session(&used, State::Allow, T0, &event(&used, &w.alice), None).await.unwrap();
    let caller = caller(&w, &w.alice);
    let (action, fp) = (action(), fingerprint("{}"));
    let replay = Replay { token_hash: &token, caller: &caller, fingerprint: &fp, action: &action, idempotency: None, now: T0 };
    assert!(matches!(store.consume_and_run(replay).await.unwrap(), ReplayOutcome::Ran(_)));

    let after_expiry = T0.plus_millis(crate::model::SESSION_LIFETIME_MS + 1);
    let before = PurgeBefore { operational: after_expiry, evidence: T0, idempotency: T0, ceremonies: T0, batch: 100 };
    let purged = store.purge(before).await.unwrap();
    assert_eq!((purged.sessions, purged.sms, purged.audit_events), (1, 1, 0));
    assert!(store.session_by_token(&SecretHash([1; 32])).await.unwrap().is_none());
    assert_eq!(store.session_by_token(&SecretHash([2; 32])).await.unwrap().unwrap().state, State::Consumed);
    assert_eq!(store.audit_of_session(&expired).await.unwrap().len(), 2, "evidence outlives the session");
    assert_eq!(store.purge(before).await.unwrap(), Purged::default(), "nothing left to purge");
    let purged = store.purge_chain(crate::chain::Chain::AuditEvents, after_expiry, 100, after_expiry).await.unwrap();
    assert_eq!(purged, 4);
    assert!(store.audit_of_session(&expired).await.unwrap().is_empty());
}

fn hash_of(password: &str) -> PasswordHash {
    // Stored hashes only: the store neither hashes nor checks.
    PasswordHash::from_stored(format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${password}"))
}

async fn credentials_are_kept_and_an_email_signs_in_one_user_only(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let email = Email::parse("alice@example.com").unwrap();
    let set = store.set_credentials(&w.alice.user_id, &email, &hash_of("a"), Role::Admin).await.unwrap();
    assert_eq!(set, CredentialsSet::Yes);
    let alice = store.user(&w.alice.user_id).await.unwrap().unwrap();
    assert_eq!((alice.email.as_ref(), alice.password.as_ref(), alice.role), (Some(&email), Some(&hash_of("a")), Role::Admin));
    // Another user cannot take the email; the refusal changes nothing.
    let taken = store.set_credentials(&w.bob.user_id, &email, &hash_of("b"), Role::Member).await.unwrap();
    assert_eq!(taken, CredentialsSet::EmailInUse);
    let bob = store.user(&w.bob.user_id).await.unwrap().unwrap();
    assert_eq!((bob.email, bob.password, bob.role), (None, None, Role::Member));
    // The owner may set new ones.
    assert_eq!(store.set_credentials(&w.alice.user_id, &email, &hash_of("c"), Role::Member).await.unwrap(), CredentialsSet::Yes);
}

async fn concurrent_password_attempts_never_exceed_the_maximum(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let (session, _) = opened(store, &w.alice, 1).await;
    let tasks = (0..12).map(|_| {
        let (store, session) = (store.clone(), session.clone());
        tokio::spawn(async move { store.reserve_attempt(&session, 5).await.unwrap() })
    });
    let reserved = join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(reserved, 5);
    assert_eq!(store.attempts_left(&session, 5).await.unwrap(), 0);
    // A right password gives its attempt back.
    store.refund_attempt(&session).await.unwrap();
    assert_eq!(store.attempts_left(&session, 5).await.unwrap(), 1);
    assert!(store.reserve_attempt(&session, 5).await.unwrap());
    assert!(!store.reserve_attempt(&session, 5).await.unwrap());
    // Another session's link has its own attempts.
    let (other, _) = opened(store, &w.alice, 2).await;
    assert_eq!(store.attempts_left(&other, 5).await.unwrap(), 5);
}

async fn the_passkey_notice_is_stored_with_the_enrolment_only(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let key = passkey(&mut SoftPasskey::new(true));
    let notice = OutgoingSms::passkey_added(Phone::parse("+33600000001").unwrap(), "https://x/account/security", T0, OutboxCopy::Whole);
    let (one, _) = opened(store, &w.alice, 1).await;
    let (two, _) = opened(store, &w.alice, 2).await;
    let first = ceremony(store, &link(1), CeremonyKind::Registration).await;
    let second = ceremony(store, &link(2), CeremonyKind::Registration).await;
    let enrol = || Enrolment { user_id: &w.alice.user_id, passkey: &key, sign_count: 0, attestation: None, notice: Some(&notice), now: T0 };
    assert_eq!(store.enrol_first_passkey(&first, enrol(), &event(&one, &w.alice)).await.unwrap(), Approved::Yes);
    // Refused (a passkey exists): no second notice.
    assert_eq!(store.enrol_first_passkey(&second, enrol(), &event(&two, &w.alice)).await.unwrap(), Approved::PasskeyExists);
    let outbox = store.sms_outbox(Some("+33600000001"), 10).await.unwrap();
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert!(outbox[0].body.contains("a passkey was added") && outbox[0].body.contains("https://x/account/security"));
}

async fn a_user_is_found_by_email(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let email = Email::parse("alice@example.com").unwrap();
    store.set_credentials(&w.alice.user_id, &email, &hash_of("a"), Role::Admin).await.unwrap();
    let found = store.user_by_email(&email).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.role), (w.alice.user_id.as_str(), Role::Admin));
    assert!(store.user_by_email(&Email::parse("bob@example.com").unwrap()).await.unwrap().is_none());
}

fn rates(keys: &[&str], rate: Rate) -> Vec<(String, Rate)> {
    keys.iter().map(|k| ((*k).to_owned(), rate)).collect()
}

async fn rates_are_taken_all_or_none_and_given_back(fixture: Fixture) {
    let store = &fixture.store;
    let two = Rate { burst: 2, interval_ms: 1_000 };
    let one = Rate { burst: 1, interval_ms: 1_000 };
    assert_eq!(store.take_rates(&rates(&["a"], two), T0).await.unwrap(), Ok(()));
    // "b" admits one; with "a" at its last admission, both are taken.
    let both = vec![("a".to_owned(), two), ("b".to_owned(), one)];
    assert_eq!(store.take_rates(&both, T0).await.unwrap(), Ok(()));
    // Now both refuse; a refusal of "b" takes nothing from "c".
    let refused = vec![("c".to_owned(), one), ("b".to_owned(), one)];
    assert_eq!(store.take_rates(&refused, T0).await.unwrap(), Err(1_000));
    assert_eq!(store.take_rates(&rates(&["c"], one), T0).await.unwrap(), Ok(()), "c took nothing");
    // Given back, an admission can be taken again at once.
    store.give_back_rates(&both).await.unwrap();
    assert_eq!(store.take_rates(&both, T0).await.unwrap(), Ok(()));
    assert!(store.take_rates(&both, T0).await.unwrap().is_err());
    assert_eq!(store.take_rates(&both, T0.plus_millis(1_000)).await.unwrap(), Ok(()));
}

async fn rates_that_refuse_together_answer_the_longest_wait_whatever_their_order(fixture: Fixture) {
    let store = &fixture.store;
    let fast = Rate { burst: 1, interval_ms: 1_000 };
    let slow = Rate { burst: 1, interval_ms: 5_000 };
    assert_eq!(store.take_rates(&[("a".to_owned(), fast)], T0).await.unwrap(), Ok(()));
    assert_eq!(store.take_rates(&[("b".to_owned(), slow)], T0).await.unwrap(), Ok(()));
    // Both refuse: only after the longer wait would both admit.
    let ab = vec![("a".to_owned(), fast), ("b".to_owned(), slow)];
    let ba = vec![("b".to_owned(), slow), ("a".to_owned(), fast)];
    assert_eq!(store.take_rates(&ab, T0).await.unwrap(), Err(5_000));
    assert_eq!(store.take_rates(&ba, T0).await.unwrap(), Err(5_000));
    // One admits, the other refuses: its wait, and nothing taken from the first.
    assert_eq!(store.take_rates(&ab, T0.plus_millis(1_000)).await.unwrap(), Err(4_000));
    assert_eq!(store.take_rates(&ba, T0.plus_millis(1_000)).await.unwrap(), Err(4_000));
    assert_eq!(store.take_rates(&[("a".to_owned(), fast)], T0.plus_millis(1_000)).await.unwrap(), Ok(()), "a took nothing");
    assert_eq!(store.take_rates(&ba, T0.plus_millis(5_000)).await.unwrap(), Ok(()), "after the longer wait both admit");
}

async fn a_rate_named_twice_is_taken_twice(fixture: Fixture) {
    let store = &fixture.store;
    let two = Rate { burst: 2, interval_ms: 1_000 };
    let one = Rate { burst: 1, interval_ms: 1_000 };
    assert_eq!(store.take_rates(&rates(&["a", "a"], two), T0).await.unwrap(), Ok(()));
    assert_eq!(store.take_rates(&rates(&["a"], two), T0).await.unwrap(), Err(1_000), "both admissions were taken");
    // The second admission refuses: the first is not taken either.
    assert_eq!(store.take_rates(&rates(&["b", "b"], one), T0).await.unwrap(), Err(1_000));
    assert_eq!(store.take_rates(&rates(&["b"], one), T0).await.unwrap(), Ok(()), "b took nothing");
    // Given back twice, both can be taken again.
    store.give_back_rates(&rates(&["a", "a"], two)).await.unwrap();
    assert_eq!(store.take_rates(&rates(&["a", "a"], two), T0).await.unwrap(), Ok(()));
}

async fn concurrent_takers_never_exceed_a_rate(fixture: Fixture) {
    let store = &fixture.store;
    let rate = Rate { burst: 5, interval_ms: 60_000 };
    let tasks = (0..16).map(|i| {
        let store = store.clone();
        // Keys in both orders: all-or-none takers must not deadlock.
        let keys = if i % 2 == 0 { ["account", "client"] } else { ["client", "account"] };
        tokio::spawn(async move { store.take_rates(&rates(&keys, rate), T0).await.unwrap() })
    });
    let admitted = join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    assert_eq!(admitted, 5);
}

fn browser(token: u8, user_id: &str, stage: Stage, replaces: Option<u8>, now: Millis) -> NewBrowserSession<'_> {
    let proofs = crate::binding::Proofs::default();
    NewBrowserSession { token_hash: SecretHash([token; 32]), user_id, stage, replaces: replaces.map(|r| SecretHash([r; 32])), proofs, now }
}

fn account_event(kind: crate::model::AuditKind, user_id: &str) -> AuditEvent {
    AuditEvent::account(kind, Some(user_id), serde_json::json!({}), &ClientInfo::default(), T0)
}

async fn a_browser_session_lives_while_used_and_ends_when_idle_or_old(fixture: Fixture) {
    use crate::model::AuditKind;
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let alive = |now: Millis| Liveness { now, idle_ms: 300_000, max_age_ms: 1_000_000 };
    store.open_browser_session(browser(1, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice)).await.unwrap();
    let hash = SecretHash([1; 32]);
    // Looking is not a use: after 4 minutes of looks, the session still ends at 5.
    let later = T0.plus_millis(240_000);
    let seen = store.browser_session(&hash, alive(later), false).await.unwrap().unwrap();
    assert_eq!((seen.user_id.as_str(), seen.stage, seen.last_seen_at), (alice, Stage::SignedIn, T0));
    assert!(store.browser_session(&hash, alive(T0.plus_millis(300_000)), false).await.unwrap().is_none());
    // A use at 4 minutes keeps it until 9; a touch of an ended session brings nothing back.
    assert_eq!(store.browser_session(&hash, alive(later), true).await.unwrap().unwrap().last_seen_at, later);
    assert!(store.browser_session(&hash, alive(T0.plus_millis(539_000)), true).await.unwrap().is_some());
    assert!(store.browser_session(&hash, alive(T0.plus_millis(539_000 + 300_000)), true).await.unwrap().is_none());
    let revived = store.browser_session(&hash, alive(T0.plus_millis(840_000)), false).await.unwrap();
    assert!(revived.is_none(), "the touch of an ended session did not revive it");
    // However busy, it ends at its maximum age.
    store.open_browser_session(browser(2, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice)).await.unwrap();
    let busy = SecretHash([2; 32]);
    for minute in 1..=16 {
        assert!(store.browser_session(&busy, alive(T0.plus_millis(minute * 60_000)), true).await.unwrap().is_some(), "{minute}");
    }
    assert!(store.browser_session(&busy, alive(T0.plus_millis(1_000_000)), true).await.unwrap().is_none());
    // Ended sessions are purged once past the operational retention.
    let before = PurgeBefore { operational: T0.plus_millis(1_000_000), evidence: T0, idempotency: T0, ceremonies: T0, batch: 100 };
    assert_eq!(store.purge(before).await.unwrap().browser_sessions, 2);
}

async fn a_browser_session_moves_on_under_a_new_secret_and_ends_everywhere(fixture: Fixture) {
    use crate::model::AuditKind;
    let store = &fixture.store;
    let w = world(store).await;
    let (alice, bob) = (w.alice.user_id.as_str(), w.bob.user_id.as_str());
    let alive = Liveness { now: T0, idle_ms: 300_000, max_age_ms: 600_000 };
    let signed_in = account_event(AuditKind::SignedIn, alice);
    store.open_browser_session(browser(1, alice, Stage::SecondFactor, None, T0), &signed_in).await.unwrap();
    store.open_browser_session(browser(2, alice, Stage::SignedIn, Some(1), T0), &signed_in).await.unwrap();
    assert!(store.browser_session(&SecretHash([1; 32]), alive, false).await.unwrap().is_none(), "the old secret is gone");
    assert_eq!(store.browser_session(&SecretHash([2; 32]), alive, false).await.unwrap().unwrap().stage, Stage::SignedIn);
    store.open_browser_session(browser(3, alice, Stage::SignedIn, None, T0), &signed_in).await.unwrap();
    store.open_browser_session(browser(4, bob, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, bob)).await.unwrap();

    assert!(store.end_browser_session(&SecretHash([3; 32]), &account_event(AuditKind::SignedOut, alice)).await.unwrap());
    assert!(!store.end_browser_session(&SecretHash([3; 32]), &account_event(AuditKind::SignedOut, alice)).await.unwrap());
    store.open_browser_session(browser(5, alice, Stage::SignedIn, None, T0), &signed_in).await.unwrap();
    let everywhere = account_event(AuditKind::SignedOutEverywhere, alice);
    assert_eq!(store.end_browser_sessions_of_user(alice, &everywhere).await.unwrap(), 2);
    for gone in [2, 5] {
        assert!(store.browser_session(&SecretHash([gone; 32]), alive, false).await.unwrap().is_none());
    }
    assert!(store.browser_session(&SecretHash([4; 32]), alive, false).await.unwrap().is_some(), "another user's session stays");
}

async fn a_sign_in_ceremony_is_taken_once_under_concurrent_finishes_and_purged_unanswered(fixture: Fixture) {
    let store = &fixture.store;
    let (answered, late, unanswered) = (SecretHash([1; 32]), SecretHash([2; 32]), SecretHash([3; 32]));
    store.save_sign_in_ceremony(&answered, "state-1", T0).await.unwrap();
    let takers = (0..8).map(|_| {
        let (store, hash) = (store.clone(), answered);
        tokio::spawn(async move { store.take_sign_in_ceremony(&hash, T0).await.unwrap() })
    });
    let taken: Vec<_> = join_all(takers).await.into_iter().filter_map(Result::unwrap).collect();
    assert_eq!(taken, vec!["state-1".to_owned()], "one finish gets the state, the others nothing");
    // Started before `not_before`: gone, and not handed out.
    store.save_sign_in_ceremony(&late, "state-2", T0).await.unwrap();
    assert_eq!(store.take_sign_in_ceremony(&late, T0.plus_millis(1)).await.unwrap(), None);
    assert_eq!(store.take_sign_in_ceremony(&late, T0).await.unwrap(), None);
    // Never answered: purged once older than `ceremonies`.
    let recent = SecretHash([4; 32]);
    store.save_sign_in_ceremony(&unanswered, "state-3", T0).await.unwrap();
    store.save_sign_in_ceremony(&recent, "state-4", T0.plus_millis(1)).await.unwrap();
    let purge = PurgeBefore { operational: T0, evidence: T0, idempotency: T0, ceremonies: T0.plus_millis(1), batch: 100 };
    store.purge(purge).await.unwrap();
    assert_eq!(store.take_sign_in_ceremony(&unanswered, T0).await.unwrap(), None);
    assert_eq!(store.take_sign_in_ceremony(&recent, T0).await.unwrap().as_deref(), Some("state-4"), "a recent one stays");
}

async fn a_user_is_found_by_webauthn_handle(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = store.user(&w.alice.user_id).await.unwrap().unwrap();
    let found = store.user_by_webauthn_handle(&alice.webauthn_handle).await.unwrap().unwrap();
    assert_eq!(found.id, alice.id);
    assert!(store.user_by_webauthn_handle(&uuid::Uuid::new_v4()).await.unwrap().is_none());
}

fn totp_event(user_id: &str) -> AuditEvent {
    account_event(crate::model::AuditKind::SignedIn, user_id)
}

fn acceptance<'a>(user_id: &'a str, step: i64, confirming: Option<&'a [SecretHash]>) -> TotpAcceptance<'a> {
    TotpAcceptance { user_id, sealed_key: "v1.key", step, now: T0, confirming, notice: None, replacing: false }
}

async fn reserve(store: &Store, user_id: &str, confirmed: bool, now: Millis) -> TotpAttempt {
    let counter = if confirmed { crate::model::TotpCounter::App } else { crate::model::TotpCounter::Pending };
    store.reserve_totp_attempt(user_id, counter, 5, 900_000, now).await.unwrap()
}

async fn an_authenticator_app_is_pending_until_confirmed_then_kept(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    assert!(store.totp_of_user(alice).await.unwrap().is_none());
    assert_eq!(reserve(store, alice, false, T0).await, TotpAttempt::Absent);
    assert!(store.begin_totp(alice, "v1.first", T0).await.unwrap());
    // A second set-up replaces the pending one.
    assert!(store.begin_totp(alice, "v1.key", T0).await.unwrap());
    let pending = store.totp_of_user(alice).await.unwrap().unwrap();
    assert_eq!((pending.sealed_key.as_str(), pending.confirmed_at), ("v1.key", None));
    assert_eq!(reserve(store, alice, true, T0).await, TotpAttempt::Absent, "nothing confirmed yet");
    assert!(
        matches!(reserve(store, alice, false, T0).await, TotpAttempt::Reserved { ref sealed_key, failures: 1 } if sealed_key == "v1.key")
    );
    // A code of the pending app confirms it (not as a confirmed one's).
    assert!(!store.accept_totp_code(acceptance(alice, 10, None), &totp_event(alice)).await.unwrap());
    assert!(store.accept_totp_code(acceptance(alice, 10, Some(&[])), &totp_event(alice)).await.unwrap());
    let confirmed = store.totp_of_user(alice).await.unwrap().unwrap();
    assert_eq!((confirmed.confirmed_at, confirmed.last_used_at), (Some(T0), Some(T0)));
    // A confirmed app is not replaced by a new set-up.
    assert!(!store.begin_totp(alice, "v1.third", T0).await.unwrap());
    assert_eq!(store.totp_of_user(alice).await.unwrap().unwrap().sealed_key, "v1.key");
    assert!(store.totp_of_user(&w.bob.user_id).await.unwrap().is_none());
}

async fn a_code_step_is_accepted_once_even_under_concurrent_sign_ins(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    store.begin_totp(&alice, "v1.key", T0).await.unwrap();
    assert!(store.accept_totp_code(acceptance(&alice, 100, Some(&[])), &totp_event(&alice)).await.unwrap());
    let tasks = (0..8).map(|_| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { store.accept_totp_code(acceptance(&alice, 101, None), &totp_event(&alice)).await.unwrap() })
    });
    let accepted = join_all(tasks).await.into_iter().filter(|r| matches!(r, Ok(true))).count();
    assert_eq!(accepted, 1);
    // Neither this step again nor an earlier one (a code one step old).
    assert!(!store.accept_totp_code(acceptance(&alice, 101, None), &totp_event(&alice)).await.unwrap());
    assert!(!store.accept_totp_code(acceptance(&alice, 100, None), &totp_event(&alice)).await.unwrap());
    assert!(store.accept_totp_code(acceptance(&alice, 102, None), &totp_event(&alice)).await.unwrap());
}

async fn five_reserved_attempts_in_a_row_lock_the_app_until_the_lock_ends(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    store.begin_totp(&alice, "v1.key", T0).await.unwrap();
    store.accept_totp_code(acceptance(&alice, 1, Some(&[])), &totp_event(&alice)).await.unwrap();
    // Four wrong, then a right one clears the series.
    for n in 1..=4 {
        assert!(matches!(reserve(store, &alice, true, T0).await, TotpAttempt::Reserved { failures, .. } if failures == n));
    }
    assert!(store.accept_totp_code(acceptance(&alice, 2, None), &totp_event(&alice)).await.unwrap());
    assert!(matches!(reserve(store, &alice, true, T0).await, TotpAttempt::Reserved { failures: 1, .. }));
    // Concurrent guesses: never more than five in a row.
    let tasks = (0..12).map(|_| {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move { reserve(&store, &alice, true, T0).await })
    });
    let outcomes: Vec<TotpAttempt> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().filter(|o| matches!(o, TotpAttempt::Reserved { .. })).count(), 4, "{outcomes:?}");
    let until = T0.plus_millis(900_000);
    assert!(outcomes.iter().filter(|o| !matches!(o, TotpAttempt::Reserved { .. })).all(|o| *o == TotpAttempt::Locked { until }));
    assert_eq!(store.totp_of_user(&alice).await.unwrap().unwrap().locked_until, Some(until));
    // Locked: even a right code cannot be tried. After the lock the count
    // goes on: the tenth locks for twice as long, and so on.
    assert_eq!(reserve(store, &alice, true, until.plus_millis(-1)).await, TotpAttempt::Locked { until });
    for n in 6..=10 {
        assert!(matches!(reserve(store, &alice, true, until).await, TotpAttempt::Reserved { failures, .. } if failures == n));
    }
    let second = until.plus_millis(2 * 900_000);
    assert_eq!(reserve(store, &alice, true, until).await, TotpAttempt::Locked { until: second });
    // The recovery codes count apart: the app's lock does not lock them.
    let recovery = store.reserve_totp_attempt(&alice, crate::model::TotpCounter::RecoveryCodes, 5, 900_000, until).await.unwrap();
    assert!(matches!(recovery, TotpAttempt::Reserved { failures: 1, .. }), "{recovery:?}");
    // An accepted code ends the series.
    assert!(store.accept_totp_code(acceptance(&alice, 3, None), &totp_event(&alice)).await.unwrap());
    assert!(matches!(reserve(store, &alice, true, second).await, TotpAttempt::Reserved { failures: 1, .. }));
}

async fn a_users_failures_add_up_across_codes_and_block_in_a_lengthening_series(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    let reserve = |now: Millis| {
        let (store, alice) = (store.clone(), alice.clone());
        async move { store.reserve_user_attempt(&alice, 5, 900_000, now).await.unwrap() }
    };
    // Four failures, then a right one: the count starts again.
    for n in 1..=4 {
        assert_eq!(reserve(T0).await, UserAttempt::Reserved { failures: n });
    }
    store.clear_user_failures(&alice).await.unwrap();
    assert_eq!(reserve(T0).await, UserAttempt::Reserved { failures: 1 });
    // Concurrent guesses: never more than five in a row.
    let tasks = (0..12).map(|_| tokio::spawn(reserve(T0)));
    let outcomes: Vec<UserAttempt> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let until = T0.plus_millis(900_000);
    assert_eq!(outcomes.iter().filter(|o| matches!(o, UserAttempt::Reserved { .. })).count(), 4, "{outcomes:?}");
    assert!(outcomes.iter().filter(|o| !matches!(o, UserAttempt::Reserved { .. })).all(|o| *o == UserAttempt::Blocked { until }));
    // Blocked until its end; then the count goes on, and the next block
    // lasts twice as long. Another user is not touched.
    assert_eq!(reserve(until.plus_millis(-1)).await, UserAttempt::Blocked { until });
    assert_eq!(store.reserve_user_attempt(&w.bob.user_id, 5, 900_000, T0).await.unwrap(), UserAttempt::Reserved { failures: 1 });
    for n in 6..=10 {
        assert_eq!(reserve(until).await, UserAttempt::Reserved { failures: n });
    }
    assert_eq!(reserve(until).await, UserAttempt::Blocked { until: until.plus_millis(2 * 900_000) });
}

async fn chain_verdict(store: &Store, chain: crate::chain::Chain) -> Option<(i64, &'static str)> {
    let key = crate::chain::ChainKey::new(&crate::sealed::SealingKey::sandbox());
    let report = crate::audit::chain::verify(store, &key, chain).await.unwrap();
    report.broken.map(|b| (b.seq, b.reason))
}

async fn the_audit_chain_names_the_first_row_changed_removed_or_forged(fixture: Fixture) {
    use crate::chain::Chain::{ApprovalEvidence, AuditEvents};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    for _ in 0..5 {
        store.append_audit(&account_event(crate::model::AuditKind::SignedIn, &alice)).await.unwrap();
    }
    let (a, _) = opened(store, &w.alice, 1).await;
    let (b, _) = opened(store, &w.alice, 2).await;
    store.decide_session(&a, State::Allow, T0, &event(&a, &w.alice), Some(r#"{"amount":"1.00"}"#)).await.unwrap();
    store.decide_session(&b, State::Allow, T0, &event(&b, &w.alice), Some(r#"{"amount":"2.00"}"#)).await.unwrap();
    let state = store.chain_state(AuditEvents).await.unwrap();
    assert!(state.head_seq >= 7, "{state:?}");
    assert_eq!(chain_verdict(store, AuditEvents).await, None);
    assert_eq!(chain_verdict(store, ApprovalEvidence).await, None);
    let key = crate::chain::ChainKey::new(&crate::sealed::SealingKey::sandbox());
    assert_eq!(crate::audit::chain::verify(store, &key, AuditEvents).await.unwrap().verified, u64::try_from(state.head_seq).unwrap());

    // A row changed in place (deleted and inserted again, as the owner may).
    fixture
        .raw(
            "CREATE TABLE tamper_kept AS SELECT * FROM audit_events WHERE seq = 3;
             CREATE TABLE tamper_forged AS SELECT * FROM audit_events WHERE seq = 3;
             UPDATE tamper_forged SET detail = '{\"by\":\"someone else\"}';
             DELETE FROM audit_events WHERE seq = 3;
             INSERT INTO audit_events SELECT * FROM tamper_forged;",
        )
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((3, "the row was changed or moved")));
    fixture.raw("DELETE FROM audit_events WHERE seq = 3; INSERT INTO audit_events SELECT * FROM tamper_kept;").await;
    assert_eq!(chain_verdict(store, AuditEvents).await, None, "restored, it holds again");

    // A new row chained by someone without the key: its hash is right
    // (SHA-256 needs no key), its MAC cannot be.
    let last = store.chain_rows(AuditEvents, state.head_seq - 1, 1).await.unwrap().remove(0);
    let seq = state.head_seq + 1;
    let columns = crate::store::rows::AuditColumns {
        at: T0.0,
        kind: "account.signed_in",
        partner_id: None,
        user_id: Some(&alice),
        session_id: None,
        detail: "{}",
        client_ip: None,
        user_agent: None,
    };
    let stranger = crate::chain::ChainKey::new(&crate::sealed::SealingKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
    let link = stranger.link(AuditEvents, seq, &crate::chain::hash_of(&last.hash).unwrap(), &columns.chained());
    let (hash, mac) = (fixture.blob(&link.hash), fixture.blob(&link.mac));
    fixture
        .raw(&format!(
            "INSERT INTO audit_events (at, kind, user_id, detail, seq, chain_hash, chain_mac)
             VALUES ({}, 'account.signed_in', '{alice}', '{{}}', {seq}, {hash}, {mac});
             UPDATE chain_heads SET seq = {seq}, hash = {hash} WHERE chain = 'audit_events';",
            T0.0
        ))
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((seq, "the row's MAC was not made with this deployment's key")));
    let restored = fixture.blob(&last.hash);
    fixture
        .raw(&format!(
            "DELETE FROM audit_events WHERE seq = {seq};
             UPDATE chain_heads SET seq = {}, hash = {restored} WHERE chain = 'audit_events';",
            state.head_seq
        ))
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, None);

    // Session A's evidence copied onto session B.
    fixture
        .raw(&format!(
            "CREATE TABLE tamper_copied AS SELECT * FROM approval_evidence WHERE session_id = '{b}';
             UPDATE tamper_copied SET evidence = (SELECT evidence FROM approval_evidence WHERE session_id = '{a}');
             DELETE FROM approval_evidence WHERE session_id = '{b}';
             INSERT INTO approval_evidence SELECT * FROM tamper_copied;"
        ))
        .await;
    assert_eq!(chain_verdict(store, ApprovalEvidence).await, Some((2, "the row was changed or moved")));

    // The newest row cut off, the head left: missing up to the head.
    fixture.raw(&format!("DELETE FROM audit_events WHERE seq = {}", state.head_seq)).await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((state.head_seq, "rows up to the head are missing")));

    // A row removed from the middle, then the newest one.
    fixture.raw("DELETE FROM audit_events WHERE seq = 2").await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((2, "a row is missing from its place")));
}

async fn the_purge_removes_whole_verified_prefixes_and_leaves_an_anchor(fixture: Fixture) {
    use crate::chain::Chain::AuditEvents;
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    let (old, new) = (T0, T0.plus_millis(10_000));
    for at in [old, old, old, new, new, new] {
        let event = AuditEvent::account(crate::model::AuditKind::SignedIn, Some(&alice), serde_json::json!({}), &ClientInfo::default(), at);
        store.append_audit(&event).await.unwrap();
    }
    let cutoff = T0.plus_millis(5_000);
    let key = crate::chain::ChainKey::new(&crate::sealed::SealingKey::sandbox());
    // A batch at a time, from the oldest; each leaves an anchor from which
    // the rest verifies.
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 2, new).await.unwrap(), 2);
    let report = crate::audit::chain::verify(store, &key, AuditEvents).await.unwrap();
    assert_eq!((report.from_seq, report.verified, report.broken), (2, 4, None));
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 2, new).await.unwrap(), 1);
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 2, new).await.unwrap(), 0, "the rest is newer");
    // An old row after newer ones is not a prefix: it stays.
    let late = AuditEvent::account(crate::model::AuditKind::SignedIn, Some(&alice), serde_json::json!({}), &ClientInfo::default(), old);
    store.append_audit(&late).await.unwrap();
    assert_eq!(store.purge_chain(AuditEvents, cutoff, 100, new).await.unwrap(), 0);
    let report = crate::audit::chain::verify(store, &key, AuditEvents).await.unwrap();
    assert_eq!((report.from_seq, report.verified, report.broken), (3, 4, None));
    // A purge never removes a break: it stops before the changed row.
    fixture
        .raw(
            "CREATE TABLE tamper_row AS SELECT * FROM audit_events WHERE seq = 5;
             UPDATE tamper_row SET detail = '{\"edited\":true}';
             DELETE FROM audit_events WHERE seq = 5;
             INSERT INTO audit_events SELECT * FROM tamper_row;",
        )
        .await;
    let everything = T0.plus_millis(20_000);
    assert_eq!(store.purge_chain(AuditEvents, everything, 100, everything).await.unwrap(), 1);
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((5, "the row was changed or moved")));
    // An anchor not made with the key is no start.
    let six = store.chain_rows(AuditEvents, 5, 1).await.unwrap().remove(0);
    fixture
        .raw(&format!(
            "INSERT INTO chain_anchors (chain, seq, hash, mac, at) VALUES ('audit_events', 6, {}, {}, 0)",
            fixture.blob(&six.hash),
            fixture.blob(&[0; 32])
        ))
        .await;
    assert_eq!(chain_verdict(store, AuditEvents).await, Some((6, "the purge anchor was not made with this deployment's key")));
}

async fn a_poll_within_the_gap_is_refused_even_when_its_clock_read_came_first(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let (_, token) = opened(store, &w.alice, 1).await;
    let poll = |now: Millis| store.record_poll(&token, &w.alice, false, now, 1_000);
    assert!(poll(T0.plus_millis(10)).await.unwrap().is_some());
    // Two concurrent polls: this one read the clock 5 ms before the other
    // but wrote after it. It is within the gap all the same.
    assert!(poll(T0.plus_millis(5)).await.unwrap().is_none());
    assert!(poll(T0.plus_millis(900)).await.unwrap().is_none());
    assert!(poll(T0.plus_millis(1_010)).await.unwrap().is_some());
    // A clock stepped back by minutes does not lock polling out.
    assert!(poll(T0.plus_millis(-600_000)).await.unwrap().is_some());
}

async fn recovery_codes_are_stored_on_confirmation_and_used_once(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let codes = [SecretHash([1; 32]), SecretHash([2; 32]), SecretHash([3; 32])];
    store.begin_totp(alice, "v1.key", T0).await.unwrap();
    store.accept_totp_code(acceptance(alice, 1, Some(&codes)), &totp_event(alice)).await.unwrap();
    assert_eq!(store.recovery_codes_left(alice).await.unwrap(), 3);
    for _ in 0..3 {
        reserve(store, alice, true, T0).await;
    }
    assert!(store.use_recovery_code(alice, &codes[1], T0, &totp_event(alice)).await.unwrap());
    assert!(!store.use_recovery_code(alice, &codes[1], T0, &totp_event(alice)).await.unwrap(), "used once");
    assert!(!store.use_recovery_code(alice, &SecretHash([9; 32]), T0, &totp_event(alice)).await.unwrap());
    assert!(!store.use_recovery_code(&w.bob.user_id, &codes[0], T0, &totp_event(alice)).await.unwrap(), "another user's");
    assert_eq!(store.recovery_codes_left(alice).await.unwrap(), 2);
    // A used recovery code ends the series of failures.
    assert!(matches!(reserve(store, alice, true, T0).await, TotpAttempt::Reserved { failures: 1, .. }));
}

async fn a_replacing_app_takes_the_old_ones_place_only_with_a_code_of_its_own(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let replacement = crate::model::TotpCounter::Replacement;
    assert!(!store.begin_totp_replacement(alice, "v1.new", T0).await.unwrap(), "no app to replace");
    store.begin_totp(alice, "v1.key", T0).await.unwrap();
    assert!(!store.begin_totp_replacement(alice, "v1.new", T0).await.unwrap(), "a pending app is no app to replace");
    let old_codes = [SecretHash([1; 32])];
    store.accept_totp_code(acceptance(alice, 5, Some(&old_codes)), &totp_event(alice)).await.unwrap();
    assert_eq!(store.reserve_totp_attempt(alice, replacement, 5, 900_000, T0).await.unwrap(), TotpAttempt::Absent);

    let later = T0.plus_millis(60_000);
    assert!(store.begin_totp_replacement(alice, "v1.new", later).await.unwrap());
    let app = store.totp_of_user(alice).await.unwrap().unwrap();
    assert_eq!((app.sealed_key.as_str(), app.replacing_since), ("v1.key", Some(later)), "the old app works meanwhile");
    let TotpAttempt::Reserved { sealed_key, .. } = store.reserve_totp_attempt(alice, replacement, 5, 900_000, later).await.unwrap() else {
        panic!("the replacement's key is checked");
    };
    assert_eq!(sealed_key, "v1.new");

    let new_codes = [SecretHash([7; 32]), SecretHash([8; 32])];
    let replacing = |sealed_key, step| TotpAcceptance {
        user_id: alice,
        sealed_key,
        step,
        now: later,
        confirming: Some(&new_codes[..]),
        notice: None,
        replacing: true,
    };
    // A code checked against the old key confirms nothing.
    assert!(!store.accept_totp_code(replacing("v1.key", 1), &totp_event(alice)).await.unwrap());
    // The new app's steps start afresh: a step below the old app's last one is its first.
    assert!(store.accept_totp_code(replacing("v1.new", 1), &totp_event(alice)).await.unwrap());
    assert!(!store.accept_totp_code(replacing("v1.new", 2), &totp_event(alice)).await.unwrap(), "confirmed once");
    let app = store.totp_of_user(alice).await.unwrap().unwrap();
    assert_eq!((app.sealed_key.as_str(), app.replacing_since, app.last_step), ("v1.new", None, 1));
    assert_eq!((app.created_at, app.confirmed_at), (later, Some(later)));
    assert!(!store.use_recovery_code(alice, &old_codes[0], later, &totp_event(alice)).await.unwrap(), "the old codes went");
    assert_eq!(store.recovery_codes_left(alice).await.unwrap(), 2);
}

async fn recovery_codes_are_renewed_only_for_a_confirmed_app(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let notice = OutgoingSms::recovery_codes_renewed(Phone::parse("+33600000004").unwrap(), "x", T0, OutboxCopy::Whole);
    let renewed = [SecretHash([5; 32])];
    assert!(!store.renew_recovery_codes(alice, &renewed, &notice, &totp_event(alice)).await.unwrap());
    store.begin_totp(alice, "v1.key", T0).await.unwrap();
    assert!(!store.renew_recovery_codes(alice, &renewed, &notice, &totp_event(alice)).await.unwrap(), "pending");
    let first = [SecretHash([1; 32]), SecretHash([2; 32])];
    store.accept_totp_code(acceptance(alice, 1, Some(&first)), &totp_event(alice)).await.unwrap();
    // Four wrong recovery codes, then new codes: a new count.
    for _ in 0..4 {
        store.reserve_totp_attempt(alice, crate::model::TotpCounter::RecoveryCodes, 5, 900_000, T0).await.unwrap();
    }
    assert!(store.renew_recovery_codes(alice, &renewed, &notice, &totp_event(alice)).await.unwrap());
    assert_eq!(store.recovery_codes_left(alice).await.unwrap(), 1);
    assert!(!store.use_recovery_code(alice, &first[0], T0, &totp_event(alice)).await.unwrap());
    let attempt = store.reserve_totp_attempt(alice, crate::model::TotpCounter::RecoveryCodes, 5, 900_000, T0).await.unwrap();
    assert!(matches!(attempt, TotpAttempt::Reserved { failures: 1, .. }), "{attempt:?}");
    assert!(store.use_recovery_code(alice, &renewed[0], T0, &totp_event(alice)).await.unwrap());
}

async fn a_confirmation_marks_only_the_key_it_checked(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    store.begin_totp(alice, "v1.key", T0).await.unwrap();
    // The code was checked against "v1.key"; meanwhile a set-up replaced it.
    store.begin_totp(alice, "v1.swapped", T0).await.unwrap();
    assert!(!store.accept_totp_code(acceptance(alice, 10, Some(&[])), &totp_event(alice)).await.unwrap());
    let app = store.totp_of_user(alice).await.unwrap().unwrap();
    assert_eq!((app.sealed_key.as_str(), app.confirmed_at), ("v1.swapped", None), "the unchecked key stays pending");
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

async fn never_the_last_factor_under_concurrent_removals(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    for round in 0..4 {
        let ids = [add_account_passkey(store, &alice).await, add_account_passkey(store, &alice).await];
        let tasks = ids.iter().map(|id| {
            let (store, alice, id) = (store.clone(), alice.clone(), id.clone());
            tokio::spawn(async move {
                let audit = account_event(crate::model::AuditKind::FactorRemoved, &alice);
                let sms = notice_sms("+33600000002");
                let removal =
                    Removal { user_id: &alice, notice: FactorNotice { audit: &audit, sms: &sms }, keep_one: true, keep_session: None };
                store.remove_passkey(&id, removal).await.unwrap()
            })
        });
        let mut outcomes: Vec<Removed> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
        outcomes.sort_by_key(|o| *o as u8);
        assert_eq!(outcomes, vec![Removed::Yes, Removed::LastFactor], "round {round}");
        assert_eq!(store.passkeys_of_user(&alice).await.unwrap().len(), 1, "round {round}: one factor is left");
        // Clear the last one (as an admin would) for the next round.
        let audit = account_event(crate::model::AuditKind::FactorRemoved, &alice);
        let sms = notice_sms("+33600000002");
        let left = store.passkeys_of_user(&alice).await.unwrap().remove(0).id;
        let removal = Removal { user_id: &alice, notice: FactorNotice { audit: &audit, sms: &sms }, keep_one: false, keep_session: None };
        assert_eq!(store.remove_passkey(&left, removal).await.unwrap(), Removed::Yes);
    }
}

async fn a_removed_factor_ends_the_other_sessions_and_every_trusted_browser_and_tells_the_user(fixture: Fixture) {
    use crate::model::{AuditKind, NewTrustedDevice};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let alive = Liveness { now: T0, idle_ms: 300_000, max_age_ms: 600_000 };
    for token in [1, 2] {
        store
            .open_browser_session(browser(token, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice))
            .await
            .unwrap();
    }
    let device =
        NewTrustedDevice { token_hash: SecretHash([9; 32]), user_id: alice, name: "Chrome", now: T0, expires_at: T0.plus_millis(1_000) };
    store.add_trusted_device(device, &account_event(AuditKind::DeviceTrusted, alice)).await.unwrap();
    let id = add_account_passkey(store, alice).await;
    let audit = account_event(AuditKind::FactorRemoved, alice);
    let sms = notice_sms("+33600000003");
    let removal = Removal {
        user_id: alice,
        notice: FactorNotice { audit: &audit, sms: &sms },
        keep_one: false,
        keep_session: Some(&SecretHash([1; 32])),
    };
    assert_eq!(store.remove_passkey(&id, removal).await.unwrap(), Removed::Yes);
    assert!(store.browser_session(&SecretHash([1; 32]), alive, false).await.unwrap().is_some(), "the session that asked stays");
    assert!(store.browser_session(&SecretHash([2; 32]), alive, false).await.unwrap().is_none(), "another session ended");
    assert!(store.trusted_devices(alice, T0).await.unwrap().is_empty(), "trusted browsers ended");
    assert!(!store.use_trusted_device(&SecretHash([9; 32]), alice, T0).await.unwrap());
    let outbox = store.sms_outbox(Some("+33600000003"), 10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert!(outbox[0].body.contains("a passkey was removed"), "{}", outbox[0].body);
    // A removal that removes nothing changes nothing and tells nobody.
    assert_eq!(store.remove_passkey(&id, removal).await.unwrap(), Removed::Absent);
    assert_eq!(store.sms_outbox(Some("+33600000003"), 10).await.unwrap().len(), 1);
    assert!(store.browser_session(&SecretHash([1; 32]), alive, false).await.unwrap().is_some());
}

async fn signing_out_everywhere_also_ends_trusted_browsers(fixture: Fixture) {
    use crate::model::{AuditKind, NewTrustedDevice};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let device =
        NewTrustedDevice { token_hash: SecretHash([9; 32]), user_id: alice, name: "Chrome", now: T0, expires_at: T0.plus_millis(1_000) };
    store.add_trusted_device(device, &account_event(AuditKind::DeviceTrusted, alice)).await.unwrap();
    store.end_browser_sessions_of_user(alice, &account_event(AuditKind::SignedOutEverywhere, alice)).await.unwrap();
    assert!(!store.use_trusted_device(&SecretHash([9; 32]), alice, T0).await.unwrap());
}

async fn a_step_up_code_waits_between_sends_is_used_once_and_burns_after_five_wrong(fixture: Fixture) {
    use crate::model::{AuditKind, StepUpAttempt};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let session = SecretHash([1; 32]);
    store.open_browser_session(browser(1, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice)).await.unwrap();
    let sms =
        OutgoingSms::step_up_code(Phone::parse("+33600000004").unwrap(), "add a sign-in method", "123456", "x", T0, OutboxCopy::Whole);
    let audit = account_event(AuditKind::StepUpCodeSent, alice);
    let code = |mac: &'static SecretHash, now: Millis| StepUpCode {
        session: &session,
        mac,
        sms: &sms,
        audit: &audit,
        resend_after_ms: 30_000,
        now,
    };
    static FIRST: SecretHash = SecretHash([7; 32]);
    static SECOND: SecretHash = SecretHash([8; 32]);
    assert_eq!(store.save_step_up_code(code(&FIRST, T0)).await.unwrap(), Ok(()));
    assert_eq!(store.save_step_up_code(code(&SECOND, T0.plus_millis(10_000))).await.unwrap(), Err(20_000), "30 s between two codes");
    assert_eq!(store.sms_outbox(Some("+33600000004"), 10).await.unwrap().len(), 1, "the refused one was not sent");
    // Older than `not_before`: missing.
    assert_eq!(store.reserve_step_up_attempt(&session, 5, T0.plus_millis(1)).await.unwrap(), StepUpAttempt::Missing);
    // Concurrent guesses never take more than five.
    let tasks = (0..12).map(|_| {
        let (store, session) = (store.clone(), session);
        tokio::spawn(async move { store.reserve_step_up_attempt(&session, 5, T0).await.unwrap() })
    });
    let reserved: Vec<_> =
        join_all(tasks).await.into_iter().map(Result::unwrap).filter(|a| matches!(a, StepUpAttempt::Reserved { .. })).collect();
    assert_eq!(reserved.len(), 5);
    assert!(reserved.iter().all(|a| matches!(a, StepUpAttempt::Reserved { mac, .. } if *mac == FIRST)));
    // A new code (30 s later) starts again; a right one spends it.
    assert_eq!(store.save_step_up_code(code(&SECOND, T0.plus_millis(30_000))).await.unwrap(), Ok(()));
    assert_eq!(store.reserve_step_up_attempt(&session, 5, T0).await.unwrap(), StepUpAttempt::Reserved { mac: SECOND, failures: 1 });
    let possession = crate::binding::Proofs { knowledge_at: None, possession_at: Some(T0.plus_millis(31_000)), phone_at: None };
    assert!(store.record_proofs(&session, possession, &account_event(AuditKind::SteppedUp, alice)).await.unwrap());
    assert_eq!(store.reserve_step_up_attempt(&session, 5, T0).await.unwrap(), StepUpAttempt::Missing, "used once");
}

async fn proofs_are_kept_with_the_session_and_recorded_one_by_one(fixture: Fixture) {
    use crate::binding::Proofs;
    use crate::model::AuditKind;
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let alive = Liveness { now: T0.plus_millis(2), idle_ms: 300_000, max_age_ms: 600_000 };
    let mut new = browser(1, alice, Stage::SignedIn, None, T0);
    new.proofs = Proofs::password(T0);
    store.open_browser_session(new, &account_event(AuditKind::SignedIn, alice)).await.unwrap();
    let hash = SecretHash([1; 32]);
    assert_eq!(store.browser_session(&hash, alive, true).await.unwrap().unwrap().proofs, Proofs::password(T0));
    let later = Proofs { knowledge_at: None, possession_at: Some(T0.plus_millis(1)), phone_at: None };
    assert!(store.record_proofs(&hash, later, &account_event(AuditKind::SteppedUp, alice)).await.unwrap());
    let proofs = store.browser_session(&hash, alive, false).await.unwrap().unwrap().proofs;
    assert_eq!(
        proofs,
        Proofs { knowledge_at: Some(T0), possession_at: Some(T0.plus_millis(1)), phone_at: None },
        "the password's proof stays"
    );
    assert!(!store.record_proofs(&SecretHash([2; 32]), later, &account_event(AuditKind::SteppedUp, alice)).await.unwrap());
}

async fn the_credential_registry_keeps_each_binding_and_removal_and_refuses_changes(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let enrolled = enrolled(store, &w.bob, 1).await;
    let id = add_account_passkey(store, alice).await;
    let stored = store.passkeys_of_user(alice).await.unwrap().into_iter().find(|p| p.id == id).unwrap();
    let credential: Vec<u8> = stored.passkey.cred_id().to_vec();
    let entries = store.registry_of_credential(&credential).await.unwrap();
    assert_eq!(entries.len(), 1);
    let key: webauthn_rs::prelude::COSEKey = serde_json::from_str(entries[0].public_key.as_deref().unwrap()).unwrap();
    assert_eq!((&entries[0].user_id, entries[0].added, &key), (&alice.to_owned(), true, stored.passkey.get_public_key()));
    let bob = store.registry_of_credential(enrolled.passkey.cred_id().as_ref()).await.unwrap();
    assert_eq!((bob.len(), bob[0].user_id.as_str()), (1, w.bob.user_id.as_str()), "a link's first passkey is registered too");
    let audit = account_event(crate::model::AuditKind::FactorRemoved, alice);
    let sms = notice_sms("+33600000005");
    let removal = Removal { user_id: alice, notice: FactorNotice { audit: &audit, sms: &sms }, keep_one: false, keep_session: None };
    assert_eq!(store.remove_passkey(&id, removal).await.unwrap(), Removed::Yes);
    let entries = store.registry_of_credential(&credential).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.added).collect::<Vec<_>>(), vec![true, false], "the removal is appended");
}
