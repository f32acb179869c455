//! Authenticator apps (`store/totp.rs`): set-up and confirmation, a code
//! step accepted once, the attempts' locks, recovery codes, replacing an
//! app.

use futures::future::join_all;

use super::*;
use crate::model::{TotpAcceptance, TotpAttempt};

backends! {
    an_authenticator_app_is_pending_until_confirmed_then_kept,
    a_confirmation_marks_only_the_key_it_checked,
    a_code_step_is_accepted_once_even_under_concurrent_sign_ins,
    five_reserved_attempts_in_a_row_lock_the_app_until_the_lock_ends,
    recovery_codes_are_stored_on_confirmation_and_used_once,
    recovery_codes_are_renewed_only_for_a_confirmed_app,
    a_replacing_app_takes_the_old_ones_place_only_with_a_code_of_its_own,
    resealing_moves_every_sealed_key_to_the_current_key_once,
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

async fn resealing_moves_every_sealed_key_to_the_current_key_once(fixture: Fixture) {
    use crate::sealed::SecretsKey;
    let store = &fixture.store;
    let w = world(store).await;
    let (alice, bob) = (w.alice.user_id.as_str(), w.bob.user_id.as_str());
    let text = |byte: u8| base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [byte; 32]);
    let old = SecretsKey::parse(&text(1)).unwrap();
    // Alice: a confirmed app and its replacement waiting; Bob: a pending app.
    assert!(store.begin_totp(alice, &old.seal(b"alice app", alice).unwrap(), T0).await.unwrap());
    let sealed = store.totp_of_user(alice).await.unwrap().unwrap().sealed_key;
    let confirm = TotpAcceptance { sealed_key: &sealed, ..acceptance(alice, 10, Some(&[])) };
    assert!(store.accept_totp_code(confirm, &totp_event(alice)).await.unwrap());
    assert!(store.begin_totp_replacement(alice, &old.seal(b"alice next", alice).unwrap(), T0).await.unwrap());
    assert!(store.begin_totp(bob, &old.seal(b"bob app", bob).unwrap(), T0).await.unwrap());

    let ring = SecretsKey::parse(&text(2)).unwrap().with_previous(&text(1)).unwrap();
    let done = crate::account::reseal_authenticator_keys(store, &ring).await.unwrap();
    assert_eq!((done.resealed, done.current, done.changed), (3, 0, 0));
    // The new key alone now opens every one, each for its owner.
    let new_only = SecretsKey::parse(&text(2)).unwrap();
    let opened: Vec<(String, Vec<u8>)> = store
        .sealed_totp_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| (k.user_id.clone(), new_only.open(&k.sealed, &k.user_id).unwrap()))
        .collect();
    let mut expected =
        vec![(alice.to_owned(), b"alice app".to_vec()), (alice.to_owned(), b"alice next".to_vec()), (bob.to_owned(), b"bob app".to_vec())];
    expected.sort();
    let mut opened = opened;
    opened.sort();
    assert_eq!(opened, expected);
    let again = crate::account::reseal_authenticator_keys(store, &ring).await.unwrap();
    assert_eq!((again.resealed, again.current), (0, 3), "nothing moves twice");

    // A key that changed meanwhile is left as it is (compare-and-set).
    let stale = store.sealed_totp_keys().await.unwrap().remove(0);
    let stale = crate::store::SealedTotpKey { sealed: "v2.00000000.gone".into(), ..stale };
    assert!(!store.reseal_totp_key(&stale, "v2.x.y").await.unwrap());
    // A key no key of the ring opens stops it, named.
    let stranger = SecretsKey::parse(&text(3)).unwrap();
    let err = crate::account::reseal_authenticator_keys(store, &stranger).await.unwrap_err();
    assert!(err.to_string().contains("neither PASSGATE_SECRETS_KEY"), "{err}");
}
