//! The ledger (`store/ledger.rs`): a replayed session runs its action
//! once, and an idempotency key answers its own request again.

use futures::future::join_all;

use super::*;
use crate::ledger::Created;
use crate::model::State;

backends! {
    concurrent_replays_run_the_action_once,
    an_idempotency_key_answers_its_request_again_and_refuses_another,
    concurrent_replays_with_one_idempotency_key_run_once,
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
