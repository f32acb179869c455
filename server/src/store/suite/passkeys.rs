//! Passkeys (`store/passkeys.rs`): a link's first passkey, its
//! ceremonies, the signature counter, the notice of an enrolment and the
//! credential registry; and the account area's sign-in ceremony
//! (`store/account_passkeys.rs`).

use futures::future::join_all;

use super::*;
use crate::model::State;

backends! {
    two_concurrent_first_passkeys_of_one_user_enrol_one,
    a_credential_is_never_enrolled_to_two_users,
    a_first_passkey_enrols_and_leaves_its_session_waiting_for_an_assertion,
    concurrent_finishes_of_one_registration_enrol_once,
    a_closed_session_enrols_nothing,
    the_passkey_notice_is_stored_with_the_enrolment_only,
    a_verified_ceremony_is_consumed_once_under_concurrent_finishes,
    the_signature_counter_only_moves_forward,
    the_credential_registry_keeps_each_binding_and_removal_and_refuses_changes,
    a_sign_in_ceremony_is_taken_once_under_concurrent_finishes_and_purged_unanswered,
    a_link_reads_its_session_every_passkey_oldest_first_and_the_ceremony_asked_for,
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
    let session = store.session_by_token(&SecretHash([2; 32]), Lookup::Settled).await.unwrap().unwrap();
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

    assert_eq!(store.session_by_token(&token, Lookup::Settled).await.unwrap().unwrap().state, State::Waiting);
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
    assert_eq!(store.session_by_token(&token, Lookup::Settled).await.unwrap().unwrap().state, State::Allow);
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
    assert!(
        store.session_by_link(&link(2), Some(CeremonyKind::Registration), Lookup::Settled).await.unwrap().unwrap().ceremony.is_some(),
        "not consumed"
    );
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
    let again =
        store.session_by_link(&link(3), Some(CeremonyKind::Authentication), Lookup::Settled).await.unwrap().unwrap().ceremony.unwrap();
    assert_eq!(again.id, low_ceremony.id);
    assert_eq!(
        store.record_passkey_use_and_allow(&again, use_at(7), &event(&low, &w.alice)).await.unwrap(),
        Approved::CounterNotAdvanced,
        "an already-used counter value is refused"
    );
    assert_eq!(store.session_by_token(&SecretHash([3; 32]), Lookup::Settled).await.unwrap().unwrap().state, State::Waiting);
    assert_eq!(store.record_passkey_use_and_allow(&again, use_at(8), &event(&low, &w.alice)).await.unwrap(), Approved::Yes);
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

/// The approval page's one read: the session behind the link, each of
/// the user's passkeys once (oldest first) and only the ceremony of the
/// kind asked for.
async fn a_link_reads_its_session_every_passkey_oldest_first_and_the_ceremony_asked_for(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let (id, _) = opened(store, &w.alice, 1).await;
    let read = |kind| async move { store.session_by_link(&link(1), kind, Lookup::Settled).await.unwrap().unwrap() };
    let none = read(Some(CeremonyKind::Authentication)).await;
    assert_eq!((none.session.id.as_str(), none.passkeys.len(), none.ceremony.is_none()), (id.as_str(), 0, true), "no passkey yet");
    let added = [add_account_passkey(store, alice).await, add_account_passkey(store, alice).await, add_account_passkey(store, alice).await];
    store.save_ceremony(&id, CeremonyKind::Authentication, "{\"a\":1}", T0).await.unwrap();
    let linked = read(Some(CeremonyKind::Authentication)).await;
    let oldest_first: Vec<String> = store.passkeys_of_user(alice).await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(linked.passkeys.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), oldest_first);
    assert_eq!(linked.passkeys.len(), added.len(), "each passkey once, whatever else the read joins");
    let ceremony = linked.ceremony.unwrap();
    assert_eq!(
        (ceremony.session_id.as_str(), ceremony.kind, ceremony.state.as_str()),
        (id.as_str(), CeremonyKind::Authentication, "{\"a\":1}")
    );
    assert!(read(Some(CeremonyKind::Registration)).await.ceremony.is_none(), "another kind's ceremony is not handed out");
    assert!(read(None).await.ceremony.is_none());
    assert_eq!((linked.partner_name.as_str(), read(None).await.passkeys.len()), (none.partner_name.as_str(), 3));
    assert!(store.session_by_link(&link(9), None, Lookup::Settled).await.unwrap().is_none(), "an unknown link opens nothing");
}
