//! SCA sessions (`store/sessions.rs`): opening one within the abuse
//! limits (open sessions, the partner's rate, the SMS rate, a code's wait
//! between sends, in one order), the partner's polls, and the approval
//! link's password attempts.

use futures::future::join_all;

use super::*;
use crate::model::State;

backends! {
    open_sessions_per_user_are_limited,
    sms_and_partner_rates_are_limited_and_a_refusal_takes_nothing,
    a_code_asked_again_too_soon_is_told_so_before_any_limit,
    combined_limits_answer_in_one_order_and_a_refusal_takes_nothing,
    a_poll_within_the_gap_is_refused_even_when_its_clock_read_came_first,
    concurrent_password_attempts_never_exceed_the_maximum,
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
    store.open_session(new, limits, Some(&Notice::Sms(code)), &event).await.unwrap()
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
    let first = store.session_by_token(&SecretHash([1; 32]), Lookup::Settled).await.unwrap().unwrap();
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
    assert!(store.session_by_token(&SecretHash([3; 32]), Lookup::Settled).await.unwrap().is_none());
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

async fn a_code_asked_again_too_soon_is_told_so_before_any_limit(fixture: Fixture) {
    let store = &fixture.store;
    let w = world(store).await;
    let limits = Limits {
        open_sessions_per_user: 2,
        sms_per_user: Rate { burst: 2, interval_ms: 60_000 },
        sessions_per_partner: Rate { burst: 8, interval_ms: 60_000 },
        pending_push: PendingPush::Supersede,
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
        assert!(store.session_by_token(&SecretHash([seed; 32]), Lookup::Settled).await.unwrap().is_none());
    }
    for seed in [1, 5] {
        assert_eq!(store.session_by_token(&SecretHash([seed; 32]), Lookup::Settled).await.unwrap().unwrap().state, State::Waiting);
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
        pending_push: PendingPush::Supersede,
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
    let first = store.session_by_token(&SecretHash([1; 32]), Lookup::Settled).await.unwrap().unwrap().id;
    store.decide_session(&first, State::Deny, minute, &event(&first, &w.alice), None).await.unwrap();
    assert_eq!(open(store, &alice_at_q, 11, &limits, true, minute).await.0, limited(LimitKind::Sms, 60_000));
    assert_eq!(store.sms_outbox(None, 10).await.unwrap().len(), 3, "the refused openings sent nothing");
    for seed in [4, 5, 6, 8, 10, 11] {
        assert!(store.session_by_token(&SecretHash([seed; 32]), Lookup::Settled).await.unwrap().is_none(), "{seed} was stored");
    }
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
