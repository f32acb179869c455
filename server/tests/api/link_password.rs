//! The first passkey from an SMS link needs the user's password as well
//! (the link is possession, the password knowledge: PSD2 RTS art. 4 and
//! 24): at most five wrong passwords per link, and an SMS tells the user
//! that a passkey was added and where to remove it.

use axum::body::Body;
use axum::http::Request;
use futures::future::join_all;
use passgate::clock::Clock;
use passgate::phone::Phone;
use passgate::token::Secret;

use crate::helpers::{soft_passkey, spawn_app, transfer_body, TestApp};

async fn link_of_new_transfer(app: &TestApp) -> (String, String) {
    let token = app.start_transfer(&transfer_body("42.00"), "passkey").await;
    (token, app.latest_link().await)
}

#[tokio::test]
async fn the_right_password_starts_the_passkey_and_the_user_is_told_by_sms() {
    let app = spawn_app().await;
    let (token, link) = link_of_new_transfer(&app).await;
    let wrong = app.register_start_with(&link, "not-the-password").await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (403, "password_invalid"));
    assert!(wrong.body["message"].as_str().unwrap().contains("4 attempts left"), "{:?}", wrong.body);

    let mut authenticator = soft_passkey();
    let finished = app.register_and_approve(&link, &mut authenticator).await;
    assert_eq!(finished.body["state"], "allowed", "{:?}", finished.body);
    assert_eq!(app.poll(&token).await.body["result"], "allow");

    let outbox = app.store.sms_outbox(Some(&app.creds.user_phone), 1).await.unwrap();
    let notice = &outbox[0];
    assert!(notice.body.contains("a passkey was added"), "{}", notice.body);
    assert!(notice.body.contains("http://localhost:8080/account/security"), "{}", notice.body);
    assert_eq!(notice.link, None);

    let session = app.session_id(&token).await;
    let kinds: Vec<String> = app.store.audit_of_session(&session).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert!(kinds.iter().any(|k| k == "password.refused"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "password.accepted"), "the knowledge element of the approval is logged: {kinds:?}");
}

#[tokio::test]
async fn five_wrong_passwords_close_the_link_to_a_new_passkey_even_with_the_right_one() {
    let app = spawn_app().await;
    let (token, link) = link_of_new_transfer(&app).await;
    for left in (1..=4).rev() {
        let wrong = app.register_start_with(&link, "wrong password").await;
        assert_eq!(wrong.code(), "password_invalid");
        assert!(wrong.body["message"].as_str().unwrap().contains(&format!("{left} attempts left")), "{:?}", wrong.body);
    }
    assert_eq!(app.register_start_with(&link, "wrong password").await.code(), "password_locked");
    let right = app.register_start(&link).await;
    assert_eq!((right.status.as_u16(), right.code()), (403, "password_locked"));
    // No ceremony was started: nothing to finish; the session still waits.
    let finish = app.approval_post(&link, "passkey/register/finish", Some(serde_json::json!({}))).await;
    assert_ne!(finish.status, 200);
    assert_eq!(app.poll(&token).await.body["result"], "waiting");
    // Five in a row also blocked the user's other links for 15 minutes;
    // then the next payment's link has attempts of its own.
    let (_, next) = link_of_new_transfer(&app).await;
    assert_eq!(app.register_start(&next).await.code(), "password_locked");
    app.clock.advance_millis(15 * 60_000);
    let (_, next) = link_of_new_transfer(&app).await;
    assert_eq!(app.register_start(&next).await.status, 200);
}

#[tokio::test]
async fn wrong_passwords_count_per_user_across_links_and_block_them_all_with_an_sms() {
    let app = spawn_app().await;
    let (_, first) = link_of_new_transfer(&app).await;
    for _ in 0..3 {
        assert_eq!(app.register_start_with(&first, "wrong password").await.code(), "password_invalid");
    }
    // A new link does not restart the count (PSD2 RTS art. 4(3)(b)).
    let (_, second) = link_of_new_transfer(&app).await;
    let fourth = app.register_start_with(&second, "wrong password").await;
    assert!(fourth.body["message"].as_str().unwrap().contains("1 attempts left"), "{:?}", fourth.body);
    let sent = app.sent.count();
    let fifth = app.register_start_with(&second, "wrong password").await;
    assert_eq!((fifth.status.as_u16(), fifth.code()), (403, "password_locked"));
    assert!(fifth.body["message"].as_str().unwrap().contains("try again in 15 minutes"), "{:?}", fifth.body);
    assert_eq!(fifth.headers["retry-after"], "900");
    assert_eq!(app.sent.count(), sent + 1, "the user is told");
    assert!(app.sent.last_body().unwrap().contains("blocked for 15 minutes"), "{:?}", app.sent.last_body());
    // Blocked: the right password on a fresh link waits too.
    let (_, third) = link_of_new_transfer(&app).await;
    assert_eq!(app.register_start(&third).await.code(), "password_locked");
    app.clock.advance_millis(15 * 60_000);
    let (_, fourth) = link_of_new_transfer(&app).await;
    assert_eq!(app.register_start(&fourth).await.status, 200);
}

#[tokio::test]
async fn concurrent_guesses_get_five_checks_in_all() {
    let app = spawn_app().await;
    let (_, link) = link_of_new_transfer(&app).await;
    let guesses = (0..12).map(|i| {
        let (app, link) = (app.clone(), link.clone());
        tokio::spawn(async move { app.register_start_with(&link, &format!("guess number {i}")).await })
    });
    let answers: Vec<_> = join_all(guesses).await.into_iter().map(|r| r.unwrap()).collect();
    assert!(answers.iter().all(|a| matches!((a.status.as_u16(), a.code()), (403, "password_invalid" | "password_locked"))), "{answers:?}");
    let checked = answers.iter().filter(|a| a.code() == "password_invalid").count();
    assert!(checked <= 4, "{checked} guesses were told to try again");
    assert_eq!(app.register_start(&link).await.code(), "password_locked");
}

#[tokio::test]
async fn a_user_without_a_password_cannot_add_a_passkey_from_a_link() {
    let app = spawn_app().await;
    let now = app.clock.now();
    let company = app.store.ensure_company("Other SAS", now).await.unwrap();
    let phone = Phone::parse("+33699999999").unwrap();
    let user = app.store.ensure_user(&company, &phone, "No Password", now).await.unwrap();
    let partner = app.store.ensure_partner("Other Partner", false, now).await.unwrap();
    let access = Secret::generate().unwrap();
    app.store.insert_access_token(&access.hash(), &partner, &user, now).await.unwrap();
    let request = Request::post("/v2/sepa/transfers")
        .header("authorization", format!("Bearer {}", access.expose()))
        .header("content-type", "application/json")
        .header("x-qonto-2fa-preference", "passkey")
        .body(Body::from(transfer_body("5.00")))
        .unwrap();
    let first = app.send(request).await;
    assert_eq!((first.status.as_u16(), first.code()), (428, "sca_required"));
    let sms = app.store.sms_outbox(Some(phone.as_str()), 1).await.unwrap();
    let link = sms[0].link.as_deref().unwrap().rsplit('/').next().unwrap().to_owned();
    let refused = app.register_start_with(&link, "").await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "password_not_set"));
}

#[tokio::test]
async fn the_password_is_required_in_the_body() {
    let app = spawn_app().await;
    let (_, link) = link_of_new_transfer(&app).await;
    let bodiless = app.approval_post(&link, "passkey/register/start", None).await;
    assert_eq!((bodiless.status.as_u16(), bodiless.code()), (415, "unsupported_media_type"));
    let missing = app.approval_post(&link, "passkey/register/start", Some(serde_json::json!({}))).await;
    assert_eq!((missing.status.as_u16(), missing.code()), (422, "validation_failed"));
}
