//! Rates and the user's failures (`store/limits.rs`): taken all or none,
//! given back, never exceeded by concurrent takers; failures blocking in
//! a lengthening series.

use futures::future::join_all;

use super::*;
use crate::model::UserAttempt;

backends! {
    rates_are_taken_all_or_none_and_given_back,
    rates_that_refuse_together_answer_the_longest_wait_whatever_their_order,
    a_rate_named_twice_is_taken_twice,
    concurrent_takers_never_exceed_a_rate,
    a_take_admits_and_waits_as_the_gcra_rule_says,
    a_users_failures_add_up_across_codes_and_block_in_a_lengthening_series,
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

/// The store's one-statement take against [`Rate::admit`] kept in memory:
/// bursts, refusals with their wait, time going on and standing still,
/// and a clock seen earlier than the stored time.
async fn a_take_admits_and_waits_as_the_gcra_rule_says(fixture: Fixture) {
    let store = &fixture.store;
    let rate = Rate { burst: 3, interval_ms: 1_000 };
    let mut tat: Option<Millis> = None;
    let steps = [0, 0, 0, 0, 0, 400, 999, 1_000, 1_000, 2_500, 2_500, 2_500, 100, 10_000, 10_000, 10_000, 10_000, 10_001];
    for (n, step) in steps.into_iter().enumerate() {
        let now = T0.plus_millis(step);
        let expected = rate.admit(tat, now);
        let taken = store.take_rates(&rates(&["k"], rate), now).await.unwrap();
        assert_eq!(taken, expected.map(drop), "step {n} at +{step} ms");
        if let Ok(next) = expected {
            tat = Some(next);
        }
    }
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
