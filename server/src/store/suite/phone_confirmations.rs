//! What the paired phone confirms (`store/phone_confirmations.rs`): one
//! waiting per user and a new request at most every 30 s; the ceremony
//! taken once; a confirmation allowed once and used once, even
//! concurrently; a new phone pairs in place of the old one only with the
//! old one's allowed confirmation, used in the same transaction.

use futures::future::join_all;

use super::*;
use crate::model::{AuditKind, ConfirmationPurpose, ConfirmationState, PairedPhone};
use crate::notify::OutgoingPush;

backends! {
    asking_cancels_the_waiting_one_and_a_new_request_waits_30_seconds,
    a_ceremony_is_taken_once_and_an_allowed_confirmation_used_once,
    a_new_phone_replaces_the_old_only_with_its_allowed_confirmation,
    the_phone_feed_names_each_user_whose_list_changed_once_past_its_overlap,
}

/// Alice, signed in on browser `token`, with a paired phone (device 1).
pub(super) async fn alice_with_phone(store: &Store, token: u8) -> (String, PairedPhone) {
    let w = world(store).await;
    let alice = w.alice.user_id.clone();
    store
        .open_browser_session(browser(token, &alice, Stage::SecondFactor, None, T0), &account_event(AuditKind::PasswordStep, &alice))
        .await
        .unwrap();
    let (audit, sms) = (account_event(AuditKind::FactorAdded, &alice), notice_sms("+33600000001"));
    let key = passkey(&mut SoftPasskey::new(true));
    let new =
        NewPairedPhone { user_id: &alice, passkey: &key, attestation: None, device_hash: &SecretHash([1; 32]), now: T0, replacing: None };
    assert!(matches!(store.pair_phone(new, FactorNotice { audit: &audit, sms: &sms }).await.unwrap(), Pairing::Paired(_)));
    let phone = store.paired_phone_of_user(&alice).await.unwrap().unwrap();
    (alice, phone)
}

pub(super) async fn ask(store: &Store, user_id: &str, phone_id: &str, token: u8, purpose: ConfirmationPurpose, now: Millis) -> Asking {
    let new = NewConfirmation {
        user_id,
        phone_id,
        purpose,
        session: &SecretHash([token; 32]),
        from_ip: Some("192.0.2.1"),
        from_browser: "Firefox on Linux",
        now,
        expires_at: now.plus_millis(120_000),
        resend_after_ms: 30_000,
    };
    store.ask_phone_confirmation(new, &OutgoingPush { phone_id: phone_id.to_owned(), sent_at: now }).await.unwrap()
}

pub(super) fn asked(asking: Asking) -> String {
    match asking {
        Asking::Asked(id) => id,
        other => panic!("not asked: {other:?}"),
    }
}

async fn asking_cancels_the_waiting_one_and_a_new_request_waits_30_seconds(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone) = alice_with_phone(store, 7).await;
    let first = asked(ask(store, &alice, &phone.id, 7, ConfirmationPurpose::SignIn, T0).await);
    assert_eq!(ask(store, &alice, &phone.id, 7, ConfirmationPurpose::SignIn, T0.plus_millis(1_000)).await, Asking::TooSoon(29_000));
    let second = asked(ask(store, &alice, &phone.id, 7, ConfirmationPurpose::SignIn, T0.plus_millis(30_000)).await);
    let listed: Vec<String> =
        store.phone_confirmations(&phone.id, T0.plus_millis(30_000)).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(listed, std::slice::from_ref(&second), "one waits at a time");
    assert_eq!(store.phone_confirmation(&first, &phone.id).await.unwrap().unwrap().state, ConfirmationState::Canceled);
    assert!(store.phone_confirmation(&first, "another-phone").await.unwrap().is_none(), "only the phone's own");
    let pushes = store.push_outbox(10).await.unwrap();
    assert_eq!(pushes.iter().map(|p| p.confirmation_id.clone()).collect::<Vec<_>>(), [Some(second.clone()), Some(first)]);
    assert!(pushes.iter().all(|p| p.session_id.is_none()));
    // Past its two minutes, nothing waits.
    assert!(store.phone_confirmations(&phone.id, T0.plus_millis(150_000)).await.unwrap().is_empty());
    // A session that ended asks nothing.
    assert_eq!(ask(store, &alice, &phone.id, 8, ConfirmationPurpose::SignIn, T0.plus_millis(90_000)).await, Asking::SessionGone);
    assert_eq!(store.push_outbox(10).await.unwrap().len(), 2);
}

async fn a_ceremony_is_taken_once_and_an_allowed_confirmation_used_once(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone) = alice_with_phone(store, 7).await;
    let id = asked(ask(store, &alice, &phone.id, 7, ConfirmationPurpose::SignIn, T0).await);
    assert!(!store.save_confirmation_ceremony(&id, "another-phone", "{}", T0).await.unwrap());
    assert!(store.save_confirmation_ceremony(&id, &phone.id, "{\"a\":1}", T0).await.unwrap());
    let takes = (0..3).map(|_| {
        let (store, id, phone_id) = (store.clone(), id.clone(), phone.id.clone());
        tokio::spawn(async move { store.take_confirmation_ceremony(&id, &phone_id, T0).await.unwrap() })
    });
    let taken: Vec<Option<String>> = join_all(takes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(taken.iter().flatten().collect::<Vec<_>>(), ["{\"a\":1}"], "once: {taken:?}");

    let session = SecretHash([7; 32]);
    assert!(!store.use_confirmation(&session, ConfirmationPurpose::SignIn, T0).await.unwrap(), "not before it is allowed");
    let event = account_event(AuditKind::FactorUsed, &alice);
    let used = |count| PasskeyUse { passkey: &phone.passkey, new_sign_count: count, evidence: None, now: T0.plus_millis(1) };
    assert_eq!(store.allow_on_phone(&id, used(1), &event).await.unwrap(), Confirmed::Yes);
    assert_eq!(store.allow_on_phone(&id, used(2), &event).await.unwrap(), Confirmed::Closed, "allowed once");
    assert_eq!(store.allow_on_phone(&id, used(1), &event).await.unwrap(), Confirmed::CounterNotAdvanced);
    let sms = notice_sms("+33600000001");
    assert!(!store.deny_on_phone(&id, &phone.id, T0, &event, &sms).await.unwrap(), "decided: no denial after");
    assert!(!store.use_confirmation(&session, ConfirmationPurpose::ReplacePhone, T0).await.unwrap(), "for its purpose only");
    let uses = (0..3).map(|_| {
        let store = store.clone();
        tokio::spawn(
            async move { store.use_confirmation(&SecretHash([7; 32]), ConfirmationPurpose::SignIn, T0.plus_millis(2)).await.unwrap() },
        )
    });
    let used: Vec<bool> = join_all(uses).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(used.iter().filter(|u| **u).count(), 1, "used once: {used:?}");
    let state = store.confirmation_of_session(&session, ConfirmationPurpose::SignIn).await.unwrap().unwrap().state;
    assert_eq!(state, ConfirmationState::Used);
}

async fn a_new_phone_replaces_the_old_only_with_its_allowed_confirmation(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, old) = alice_with_phone(store, 7).await;
    let session = SecretHash([7; 32]);
    let removed = account_event(AuditKind::FactorRemoved, &alice);
    let key = passkey(&mut SoftPasskey::new(true));
    let pair_new = |replacing: Option<Replacing<'_>>, device: u8| {
        let (audit, sms) = (account_event(AuditKind::FactorAdded, &alice), notice_sms("+33600000001"));
        let (store, key, alice) = (store.clone(), key.clone(), alice.clone());
        let replacing = replacing.map(|r| (r.phone_id.to_owned(), *r.session));
        let removed = removed.clone();
        async move {
            let replacing = replacing.as_ref().map(|(phone_id, session)| Replacing { phone_id, session, audit: &removed });
            let new = NewPairedPhone {
                user_id: &alice,
                passkey: &key,
                attestation: None,
                device_hash: &SecretHash([device; 32]),
                now: T0,
                replacing,
            };
            store.pair_phone(new, FactorNotice { audit: &audit, sms: &sms }).await.unwrap()
        }
    };
    let replacing = || Some(Replacing { phone_id: &old.id, session: &session, audit: &removed });
    assert_eq!(pair_new(None, 2).await, Pairing::AlreadyPaired);
    let id = asked(ask(store, &alice, &old.id, 7, ConfirmationPurpose::ReplacePhone, T0).await);
    assert_eq!(pair_new(replacing(), 2).await, Pairing::AlreadyPaired, "not while it waits");
    let used = PasskeyUse { passkey: &old.passkey, new_sign_count: 1, evidence: None, now: T0 };
    assert_eq!(store.allow_on_phone(&id, used, &account_event(AuditKind::FactorUsed, &alice)).await.unwrap(), Confirmed::Yes);
    assert_eq!(pair_new(Some(Replacing { phone_id: "another", session: &session, audit: &removed }), 2).await, Pairing::AlreadyPaired);
    assert!(matches!(pair_new(replacing(), 2).await, Pairing::Paired(_)));
    assert!(store.paired_phone_by_device(&SecretHash([1; 32])).await.unwrap().is_none(), "the old phone ended");
    let new = store.paired_phone_of_user(&alice).await.unwrap().unwrap();
    assert_ne!(new.id, old.id);
    assert_eq!(pair_new(replacing(), 3).await, Pairing::AlreadyPaired, "the confirmation was used");
    let query = AuditQuery { scope: Scope::User(&alice), category: None, before_id: None, limit: 20 };
    let events = store.audit_log(query).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.row.kind == "factor.removed").count(), 1, "the old phone's end, logged");
}

/// The feed behind the phones' live lists (`store/phone_approvals.rs`):
/// a push names its user once; an unpairing names them too, read again
/// within the overlap (a late commit is not missed), then no more.
async fn the_phone_feed_names_each_user_whose_list_changed_once_past_its_overlap(fixture: Fixture) {
    let store = &fixture.store;
    let (alice, phone) = alice_with_phone(store, 7).await;
    let start = store.phone_feed_start(T0).await.unwrap();
    let (users, cursor) = store.phone_feed(start).await.unwrap();
    assert!(users.is_empty(), "nothing since the start: {users:?}");
    asked(ask(store, &alice, &phone.id, 7, ConfirmationPurpose::SignIn, T0).await);
    let (users, cursor) = store.phone_feed(cursor).await.unwrap();
    assert_eq!(users, std::slice::from_ref(&alice), "a push names its user");
    let (users, cursor) = store.phone_feed(cursor).await.unwrap();
    assert!(users.is_empty(), "once: {users:?}");

    let (audit, sms) = (account_event(AuditKind::FactorRemoved, &alice), notice_sms("+33600000001"));
    let ended = T0.plus_millis(5_000);
    let unpaired = store.unpair_phone(&phone.id, &crate::model::UnpairedBy::User, ended, FactorNotice { audit: &audit, sms: &sms });
    assert!(unpaired.await.unwrap());
    let (users, cursor) = store.phone_feed(cursor).await.unwrap();
    assert_eq!(users, std::slice::from_ref(&alice), "an unpairing names its user");
    assert_eq!(cursor.decided_at, ended);
    let later = FeedCursor { decided_at: ended.plus_millis(crate::store::FEED_OVERLAP_MS), ..cursor };
    assert!(store.phone_feed(later).await.unwrap().0.is_empty(), "past the overlap, no more");
}
