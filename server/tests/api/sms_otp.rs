//! The `sms-otp` method (seed 002, Embed partners): a code by SMS, the
//! replay with `X-Qonto-MFA`; five minutes, single use, five wrong codes,
//! a new code supersedes the old one at most every 30 s, bound to the
//! request; any 6 characters in sandbox, only the sent code in production.

use axum::body::Body;
use axum::http::Request;
use futures::future::join_all;
use passgate::config::Mode;

use passgate::store::Rate;

use crate::helpers::{spawn_app, spawn_app_in, spawn_app_with, transfer_body, Reply, TestApp};

/// A transfer by the Embed partner with `sms-otp`, and the code if any.
async fn transfer(app: &TestApp, body: &str, code: Option<&str>) -> Reply {
    let mut request = Request::post("/v2/sepa/transfers")
        .header("authorization", format!("Bearer {}", app.creds.embed_partner_token))
        .header("content-type", "application/json")
        .header("x-qonto-2fa-preference", "sms-otp");
    if let Some(code) = code {
        request = request.header("x-qonto-mfa", code);
    }
    app.send(request.body(Body::from(body.to_owned())).unwrap()).await
}

/// Asks for a code: the 428 of the seed, and the code the user got.
async fn code_for(app: &TestApp, body: &str) -> String {
    let reply = transfer(app, body, None).await;
    assert_eq!(reply.status, 428, "{:?}", reply.body);
    assert_eq!(reply.body, serde_json::json!({"code": "thirdparty_sms_otp_required", "message": "Thirdparty SMS OTP required"}));
    app.sent.last_code().expect("a code was sent")
}

async fn transfers_of(app: &TestApp) -> usize {
    app.store.transfers_of_company(&company_id(app).await, 100).await.unwrap().len()
}

async fn company_id(app: &TestApp) -> String {
    app.store.user(&app.user_id().await).await.unwrap().unwrap().company_id
}

#[tokio::test]
async fn the_sent_code_runs_the_action_once_and_only_the_sent_code_in_production() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("42.00");
    let code = code_for(&app, &body).await;
    assert_eq!(code.len(), 6);
    let sms = app.sent.last_body().unwrap();
    assert!(sms.contains(&code) && sms.ends_with(&format!("@localhost #{code}")), "{sms}");
    // What the code approves, as the user must see it (PSD2 RTS art. 5).
    assert!(sms.contains("pay 42.00 EUR to ACME SAS (IBAN …0189)"), "{sms}");
    // The outbox keeps no code in production.
    let stored = app.store.sms_outbox(None, 1).await.unwrap();
    assert!(!stored[0].body.contains(&code) && stored[0].otp.is_none(), "{:?}", stored[0]);

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = transfer(&app, &body, Some(wrong)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (412, "sca_otp_invalid"));
    let ran = transfer(&app, &body, Some(&code)).await;
    assert_eq!(ran.status, 201, "{:?}", ran.body);
    assert_eq!(ran.body["transfer"]["amount"], "42.00");
    let again = transfer(&app, &body, Some(&code)).await;
    assert_eq!((again.status.as_u16(), again.code()), (412, "sca_otp_invalid"), "single use");
    assert_eq!(transfers_of(&app).await, 1);
}

#[tokio::test]
async fn two_concurrent_replays_with_the_right_code_run_once() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("7.00");
    let code = code_for(&app, &body).await;
    let replies = join_all((0..8).map(|_| transfer(&app, &body, Some(&code)))).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    let refused: Vec<(u16, &str)> = replies.iter().filter(|r| r.status != 201).map(|r| (r.status.as_u16(), r.code())).collect();
    // Each other is refused (PROTOCOL 6b: "the others get 412"): the
    // session consumed, or no code waiting any more, or (not documented
    // for a right code) the code's five attempts taken by the replays
    // checking it at once.
    let losing = ["sca_session_consumed", "sca_otp_invalid", "sca_otp_locked"];
    assert!(refused.iter().all(|(status, code)| *status == 412 && losing.contains(code)), "{refused:?}");
    assert_eq!(transfers_of(&app).await, 1);
}

#[tokio::test]
async fn the_fifth_wrong_code_burns_it_even_for_the_right_one() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("9.00");
    let code = code_for(&app, &body).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for attempt in 1..=5 {
        let reply = transfer(&app, &body, Some(wrong)).await;
        let expected = if attempt < 5 { "sca_otp_invalid" } else { "sca_otp_locked" };
        assert_eq!((reply.status.as_u16(), reply.code()), (412, expected), "attempt {attempt}");
    }
    let late = transfer(&app, &body, Some(&code)).await;
    assert_eq!((late.status.as_u16(), late.code()), (412, "sca_otp_locked"));
    // Five in a row also blocked the user's codes for 15 minutes; then a
    // new code works.
    app.clock.advance_millis(15 * 60_000);
    let fresh = code_for(&app, &body).await;
    assert_eq!(transfer(&app, &body, Some(&fresh)).await.status, 201);
}

#[tokio::test]
async fn wrong_codes_count_per_user_across_new_codes_until_a_right_one() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("8.00");
    let wrong_for = |code: &str| if code == "000000" { "111111".to_owned() } else { "000000".to_owned() };
    // Four wrong, then the right one: the count starts again.
    let code = code_for(&app, &body).await;
    for _ in 0..4 {
        assert_eq!(transfer(&app, &body, Some(&wrong_for(&code))).await.code(), "sca_otp_invalid");
    }
    assert_eq!(transfer(&app, &body, Some(&code)).await.status, 201);
    // Three wrong on one code, two on the next: a new code does not
    // restart the count (PSD2 RTS art. 4(3)(b)).
    let second = transfer_body("8.01");
    let code = code_for(&app, &second).await;
    for _ in 0..3 {
        assert_eq!(transfer(&app, &second, Some(&wrong_for(&code))).await.code(), "sca_otp_invalid");
    }
    app.clock.advance_millis(30_000);
    let code = code_for(&app, &second).await;
    assert_eq!(transfer(&app, &second, Some(&wrong_for(&code))).await.code(), "sca_otp_invalid");
    let sent = app.sent.count();
    let fifth = transfer(&app, &second, Some(&wrong_for(&code))).await;
    assert_eq!((fifth.status.as_u16(), fifth.code()), (412, "sca_otp_locked"));
    assert!(fifth.body["message"].as_str().unwrap().contains("for this user"), "{:?}", fifth.body);
    // The user is told, and even the right code waits for the block's end.
    assert_eq!(app.sent.count(), sent + 1);
    let notice = app.sent.last_body().unwrap();
    assert!(notice.contains("5 wrong codes or passwords in a row") && notice.contains("blocked for 15 minutes"), "{notice}");
    assert_eq!(transfer(&app, &second, Some(&code)).await.code(), "sca_otp_locked");
    app.clock.advance_millis(15 * 60_000);
    let code = code_for(&app, &second).await;
    assert_eq!(transfer(&app, &second, Some(&code)).await.status, 201);
    assert_eq!(transfers_of(&app).await, 2);
}

/// Twelve wrong guesses at once, each on its own task of a multi-threaded
/// runtime (so that they race in the store, not one after another on one
/// task): five are checked, no more, whatever the order. The code's five
/// attempts and the user's five in a row are each reserved before the
/// check; either count past five would be a free guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_guesses_never_exceed_five() {
    use passgate::clock::Clock;
    use passgate::model::UserAttempt;
    use passgate::one_time_code::MAX_WRONG_CODES;
    use passgate::sca::failures::{FIRST_BLOCK_MS, MAX_IN_A_ROW};
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("3.00");
    let code = code_for(&app, &body).await;
    let sent = app.sent.count();
    let guesses: Vec<String> = (0..12).map(|i| format!("{:06}", (code.parse::<u32>().unwrap() + 1 + i) % 1_000_000)).collect();
    let tasks = guesses.into_iter().map(|guess| {
        let (app, body) = (app.clone(), body.clone());
        tokio::spawn(async move { transfer(&app, &body, Some(&guess)).await })
    });
    let replies: Vec<Reply> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let answers: Vec<(u16, &str)> = replies.iter().map(|r| (r.status.as_u16(), r.code())).collect();
    // Each was refused as wrong (tries left) or locked; at most four were
    // told to try again: the fifth checked burns the code, and the others
    // find it burnt or the user blocked.
    assert!(answers.iter().all(|a| matches!(a, (412, "sca_otp_invalid" | "sca_otp_locked"))), "{answers:?}");
    let wrong = answers.iter().filter(|a| a.1 == "sca_otp_invalid").count();
    assert!(wrong < MAX_WRONG_CODES as usize, "{wrong} told to try again: {answers:?}");
    // The code took exactly five attempts (counted before each check),
    // read through a ceiling of 100: not one more was checked.
    let user_id = app.user_id().await;
    let refused = app.audit_of_user(&user_id, 50).await.into_iter().filter(|e| e.kind == "replay.refused").collect::<Vec<_>>();
    assert_eq!(refused.len(), 12, "every refusal is logged: {refused:?}");
    let session_id = refused[0].session_id.clone().expect("the refusals name the code's session");
    assert_eq!(100 - app.store.attempts_left(&session_id, 100).await.unwrap(), MAX_WRONG_CODES, "attempts made at the code");
    // The right code is refused now.
    let late = transfer(&app, &body, Some(&code)).await;
    assert_eq!((late.status.as_u16(), late.code()), (412, "sca_otp_locked"));
    // The user's count took five too: one block, told once by SMS; once
    // it ends, the next attempt is the sixth in the series.
    assert_eq!(app.sent.count(), sent + 1, "one block notice");
    app.clock.advance_millis(FIRST_BLOCK_MS);
    let next = app.store.reserve_user_attempt(&user_id, MAX_IN_A_ROW, FIRST_BLOCK_MS, app.clock.now()).await.unwrap();
    assert_eq!(next, UserAttempt::Reserved { failures: MAX_IN_A_ROW + 1 }, "the user's failures before it");
}

#[tokio::test]
async fn a_code_lives_five_minutes_and_is_bound_to_its_request() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("11.00");
    let code = code_for(&app, &body).await;
    let changed = transfer(&app, &transfer_body("11.01"), Some(&code)).await;
    assert_eq!((changed.status.as_u16(), changed.code()), (412, "sca_request_mismatch"));
    app.clock.advance_millis(5 * 60_000);
    let expired = transfer(&app, &body, Some(&code)).await;
    assert_eq!((expired.status.as_u16(), expired.code()), (412, "sca_session_expired"));
    assert_eq!(transfers_of(&app).await, 0);
}

#[tokio::test]
async fn asking_again_sends_a_new_code_and_the_old_one_stops_working_but_not_within_30_seconds() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("12.00");
    let first = code_for(&app, &body).await;
    let sent = app.sent.count();
    let soon = transfer(&app, &body, None).await;
    assert_eq!((soon.status.as_u16(), soon.code()), (429, "sms_rate_limited"));
    assert_eq!(soon.headers["retry-after"], "30");
    assert_eq!(app.sent.count(), sent, "no SMS within 30 s");
    app.clock.advance_millis(29_000);
    assert_eq!(transfer(&app, &body, None).await.headers["retry-after"], "1");

    app.clock.advance_millis(1_000);
    let second = code_for(&app, &body).await;
    assert_eq!(app.sent.count(), sent + 1);
    if first != second {
        let old = transfer(&app, &body, Some(&first)).await;
        assert_eq!((old.status.as_u16(), old.code()), (412, "sca_otp_invalid"), "the old code is superseded");
    }
    assert_eq!(transfer(&app, &body, Some(&second)).await.status, 201);
    // Another request is another code, sent at once.
    code_for(&app, &transfer_body("13.00")).await;
}

#[tokio::test]
async fn sandbox_accepts_any_six_characters_once_a_code_was_asked_for() {
    let app = spawn_app().await;
    let body = transfer_body("5.00");
    let none_asked = transfer(&app, &body, Some("ABC123")).await;
    assert_eq!((none_asked.status.as_u16(), none_asked.code()), (412, "sca_otp_invalid"));
    code_for(&app, &body).await;
    let short = transfer(&app, &body, Some("12345")).await;
    assert_eq!((short.status.as_u16(), short.code()), (412, "sca_otp_invalid"));
    assert_eq!(transfer(&app, &body, Some("ABC123")).await.status, 201);
    // The sandbox outbox shows the code, as `/dev/sms` promises.
    assert!(app.store.sms_outbox(None, 1).await.unwrap()[0].otp.is_some());
}

#[tokio::test]
async fn a_new_code_refused_by_the_sms_limit_leaves_the_old_one_working() {
    let app = spawn_app_with(Mode::Production, |c| c.limits.sms_per_user = Rate { burst: 1, interval_ms: 600_000 }).await;
    let body = transfer_body("14.00");
    let code = code_for(&app, &body).await;
    app.clock.advance_millis(30_000);
    let limited = transfer(&app, &body, None).await;
    assert_eq!((limited.status.as_u16(), limited.code()), (429, "sms_rate_limited"));
    assert_eq!(transfer(&app, &body, Some(&code)).await.status, 201, "no new code was sent: the old one still counts");
}

#[tokio::test]
async fn an_sms_otp_approval_keeps_evidence_of_the_text_and_the_code_it_bound() {
    use passgate::audit::report::{self, Check};
    use passgate::audit::verify::Failure;
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("950.00");
    let code = code_for(&app, &body).await;
    assert_eq!(transfer(&app, &body, Some(&code)).await.status, 201);
    let events = app.audit_of_user(&app.user_id().await, 10).await;
    let session = events.iter().find(|e| e.kind == "session.decided").and_then(|e| e.session_id.clone()).unwrap();
    let kept: serde_json::Value = serde_json::from_str(&app.store.evidence_of_session(&session).await.unwrap().unwrap()).unwrap();
    assert_eq!(kept["kind"], "sms_otp");
    let text = kept["sms_text"].as_str().unwrap();
    assert!(text.contains("pay 950.00 EUR to ACME SAS (IBAN …0189)"), "{text}");
    assert!(!text.contains(&code), "the code itself is not kept: {text}");
    let config = crate::helpers::config("sqlite://unused", Mode::Production);
    let key = passgate::audit::evidence::EvidenceKey::new(&config.secrets_key);
    assert!(matches!(report::check(&kept, &session, &key, None), Check::Verified(v) if v.holds));
    let mut edited = kept.clone();
    edited["sms_text"] = serde_json::json!(text.replace("950.00", "9.50"));
    assert!(matches!(report::check(&edited, &session, &key, None), Check::Verified(v) if v.failed == vec![Failure::BindingInvalid]));
}
