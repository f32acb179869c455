//! Browser sessions (`store/browser_sessions.rs`): their life, a new
//! secret, signing out (everywhere, trusted browsers too:
//! `store/trusted.rs`), their proofs and step-up codes.

use futures::future::join_all;

use super::*;
use crate::model::Liveness;

backends! {
    a_browser_session_lives_while_used_and_ends_when_idle_or_old,
    a_browser_session_moves_on_under_a_new_secret_and_ends_everywhere,
    signing_out_everywhere_also_ends_trusted_browsers,
    proofs_are_kept_with_the_session_and_recorded_one_by_one,
    a_step_up_code_waits_between_sends_is_used_once_and_burns_after_five_wrong,
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

async fn signing_out_everywhere_also_ends_trusted_browsers(fixture: Fixture) {
    use crate::model::{AuditKind, NewTrustedBrowser};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let browser =
        NewTrustedBrowser { token_hash: SecretHash([9; 32]), user_id: alice, name: "Chrome", now: T0, expires_at: T0.plus_millis(1_000) };
    store.add_trusted_browser(browser, &account_event(AuditKind::DeviceTrusted, alice)).await.unwrap();
    store.end_browser_sessions_of_user(alice, &account_event(AuditKind::SignedOutEverywhere, alice)).await.unwrap();
    assert!(!store.use_trusted_browser(&SecretHash([9; 32]), alice, T0).await.unwrap());
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

async fn a_step_up_code_waits_between_sends_is_used_once_and_burns_after_five_wrong(fixture: Fixture) {
    use crate::model::{AuditKind, StepUpAttempt};
    let store = &fixture.store;
    let w = world(store).await;
    let alice = w.alice.user_id.as_str();
    let session = SecretHash([1; 32]);
    store.open_browser_session(browser(1, alice, Stage::SignedIn, None, T0), &account_event(AuditKind::SignedIn, alice)).await.unwrap();
    let sms = OutgoingSms::step_up_code(
        Phone::parse("+33600000004").unwrap(),
        "add a sign-in method",
        "123456",
        300_000,
        "x",
        T0,
        OutboxCopy::Whole,
    );
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
