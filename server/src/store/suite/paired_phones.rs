//! Paired phones (`store/paired_phones.rs`): one per user, even under
//! concurrent pairings; a phone's passkey is never an account's passkey
//! too, nor the reverse; unpairing ends the device credential; the
//! pairing ceremony is taken once.

use futures::future::join_all;

use super::*;
use crate::model::UnpairedBy;

backends! {
    a_user_pairs_one_phone_at_a_time_even_concurrently,
    a_phones_passkey_and_an_accounts_never_share_a_credential,
    unpairing_ends_the_device_credential_once_and_a_new_phone_pairs,
    a_pairing_ceremony_is_taken_once_and_not_after_its_time,
}

fn notice(user_id: &str) -> (AuditEvent, OutgoingSms) {
    (account_event(crate::model::AuditKind::FactorAdded, user_id), notice_sms("+33600000001"))
}

async fn pair(store: &Store, user_id: &str, key: &Passkey, device: u8) -> Pairing {
    let (audit, sms) = notice(user_id);
    let hash = SecretHash([device; 32]);
    let new = NewPairedPhone { user_id, passkey: key, attestation: None, device_hash: &hash, now: T0, replacing: None };
    store.pair_phone(new, FactorNotice { audit: &audit, sms: &sms }).await.unwrap()
}

async fn a_user_pairs_one_phone_at_a_time_even_concurrently(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let tasks = (1u8..=4).map(|device| {
        let (store, user) = (store.clone(), w.alice.user_id.clone());
        tokio::spawn(async move { pair(&store, &user, &passkey(&mut SoftPasskey::new(true)), device).await })
    });
    let outcomes: Vec<Pairing> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let paired = outcomes.iter().filter(|o| matches!(o, Pairing::Paired(_))).count();
    assert_eq!(paired, 1, "{outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == Pairing::AlreadyPaired).count(), 3, "{outcomes:?}");
    let phone = store.paired_phone_of_user(&w.alice.user_id).await.unwrap().unwrap();
    assert_eq!(outcomes.iter().find(|o| matches!(o, Pairing::Paired(_))), Some(&Pairing::Paired(phone.id.clone())));
    assert_eq!(store.sms_outbox(None, 10).await.unwrap().len(), 1, "only the pairing that happened is told");
    assert!(store.paired_phone_of_user(&w.bob.user_id).await.unwrap().is_none());
}

async fn a_phones_passkey_and_an_accounts_never_share_a_credential(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    // An account's passkey offered as a phone's: refused, nothing stored.
    let account = passkey(&mut SoftPasskey::new(true));
    let (audit, sms) = notice(&w.alice.user_id);
    let new = NewPasskey { user_id: &w.alice.user_id, passkey: &account, attestation: None, sign_count: 0, name: None, now: T0 };
    assert!(store.add_passkey(new, FactorNotice { audit: &audit, sms: &sms }).await.unwrap());
    assert_eq!(pair(store, &w.bob.user_id, &account, 1).await, Pairing::CredentialInUse);
    assert!(store.paired_phone_of_user(&w.bob.user_id).await.unwrap().is_none());
    // A phone's passkey offered as an account's, by anyone, even once unpaired.
    let phone_key = passkey(&mut SoftPasskey::new(true));
    assert!(matches!(pair(store, &w.alice.user_id, &account_free(store, &w.alice.user_id).await, 2).await, Pairing::AlreadyPaired));
    assert!(matches!(pair(store, &w.bob.user_id, &phone_key, 3).await, Pairing::Paired(_)));
    for user in [&w.alice.user_id, &w.bob.user_id] {
        let (audit, sms) = notice(user);
        let new = NewPasskey { user_id: user, passkey: &phone_key, attestation: None, sign_count: 0, name: None, now: T0 };
        assert!(!store.add_passkey(new, FactorNotice { audit: &audit, sms: &sms }).await.unwrap(), "{user}");
    }
    let bobs = store.paired_phone_of_user(&w.bob.user_id).await.unwrap().unwrap();
    let (audit, sms) = notice(&w.bob.user_id);
    assert!(store.unpair_phone(&bobs.id, &UnpairedBy::User, T0, FactorNotice { audit: &audit, sms: &sms }).await.unwrap());
    assert_eq!(pair(store, &w.alice.user_id, &phone_key, 4).await, Pairing::AlreadyPaired, "Alice has one");
    assert!(store.passkeys_of_user(&w.bob.user_id).await.unwrap().is_empty());
}

/// Alice's first phone (any passkey): pairs her, returns a passkey that
/// is nobody's, for a pairing that must then be refused as hers.
async fn account_free(store: &Store, user_id: &str) -> Passkey {
    assert!(matches!(pair(store, user_id, &passkey(&mut SoftPasskey::new(true)), 9).await, Pairing::Paired(_)));
    passkey(&mut SoftPasskey::new(true))
}

async fn unpairing_ends_the_device_credential_once_and_a_new_phone_pairs(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let user = &w.alice.user_id;
    assert!(matches!(pair(store, user, &passkey(&mut SoftPasskey::new(true)), 1).await, Pairing::Paired(_)));
    let phone = store.paired_phone_by_device(&SecretHash([1; 32])).await.unwrap().unwrap();
    assert_eq!(&phone.user_id, user);
    assert!(store.paired_phone_by_device(&SecretHash([2; 32])).await.unwrap().is_none());
    let (audit, sms) = notice(user);
    let ends = (0..3).map(|_| {
        let (store, id, audit, sms) = (store.clone(), phone.id.clone(), audit.clone(), sms.clone());
        tokio::spawn(
            async move { store.unpair_phone(&id, &UnpairedBy::Phone, T0, FactorNotice { audit: &audit, sms: &sms }).await.unwrap() },
        )
    });
    let ended: Vec<bool> = join_all(ends).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(ended.iter().filter(|e| **e).count(), 1, "ended once: {ended:?}");
    assert!(store.paired_phone_by_device(&SecretHash([1; 32])).await.unwrap().is_none());
    assert!(store.paired_phone_of_user(user).await.unwrap().is_none());
    assert!(matches!(pair(store, user, &passkey(&mut SoftPasskey::new(true)), 2).await, Pairing::Paired(_)));
    assert!(store.paired_phone_by_device(&SecretHash([2; 32])).await.unwrap().is_some());
}

async fn a_pairing_ceremony_is_taken_once_and_not_after_its_time(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    store
        .open_browser_session(
            browser(7, &w.alice.user_id, Stage::SignedIn, None, T0),
            &account_event(crate::model::AuditKind::SignedIn, &w.alice.user_id),
        )
        .await
        .unwrap();
    let session = SecretHash([7; 32]);
    store.save_pairing_ceremony(&session, "{\"a\":1}", T0).await.unwrap();
    store.save_pairing_ceremony(&session, "{\"b\":2}", T0.plus_millis(1)).await.unwrap();
    let takes = (0..3).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.take_pairing_ceremony(&SecretHash([7; 32]), T0).await.unwrap() })
    });
    let taken: Vec<Option<String>> = join_all(takes).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(taken.iter().flatten().collect::<Vec<_>>(), ["{\"b\":2}"], "the newer one, once");
    store.save_pairing_ceremony(&session, "{}", T0).await.unwrap();
    assert_eq!(store.take_pairing_ceremony(&session, T0.plus_millis(1)).await.unwrap(), None, "started too long ago");
    assert_eq!(store.take_pairing_ceremony(&session, T0).await.unwrap(), None, "and gone all the same");
}
