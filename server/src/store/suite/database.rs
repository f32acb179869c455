//! The database as a whole: every area's records read back by a store
//! opened afresh on it, and the mode (sandbox or production) it was first
//! used in.

use super::*;
use crate::chain::Chain;
use crate::email::Email;
use crate::model::{Liveness, Role, State, UserAttempt};

backends! {
    a_reopened_database_keeps_its_data,
    the_database_remembers_the_mode_it_was_first_used_in,
}

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
    let waiting = store.session_by_token(&SecretHash([1; 32]), Lookup::Settled).await.unwrap().unwrap().id;
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
    store.link_chains().await.unwrap();
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
    let session =
        |seed: u8| async move { store.session_by_token(&SecretHash([seed; 32]), Lookup::Settled).await.unwrap().map(|s| (s.id, s.state)) };
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

async fn the_database_remembers_the_mode_it_was_first_used_in(fixture: Fixture) {
    assert_eq!(fixture.store.claim_mode("production").await.unwrap(), "production");
    assert_eq!(fixture.store.claim_mode("sandbox").await.unwrap(), "production");
}
