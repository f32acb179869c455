//! Binding a factor is itself SCA (issue 21, point 1): a session proves
//! two factors within the last 5 minutes before it adds a passkey or an
//! authenticator app; otherwise it is asked again (a step-up), never
//! refused silently. Every factor added or removed is told to the user by
//! SMS and named in the log; a removal ends the user's other sessions and
//! trusted browsers.

use axum::http::Method;
use passgate::clock::Clock;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, two_factor_sign_in, user_with_app, Browser};

const MINUTE: i64 = 60_000;

fn step_up_of(body: &Value) -> &Value {
    &body["step_up"]
}

#[tokio::test]
async fn the_password_alone_binds_nothing_until_the_registered_phone_confirms() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    for path in ["/api/account/passkeys/start", "/api/account/totp/setup"] {
        let refused = browser.post(path, None).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (403, "step_up_required"), "{path}");
        assert_eq!(step_up_of(&refused.body), &json!({"done": false, "password": false, "ways": ["sms"]}), "{path}");
    }
    assert!(app.store.totp_of_user(&app.user_id().await).await.unwrap().is_none(), "nothing was begun");

    // A wrong code is counted; the right one, once.
    assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": "000000"}))).await.code(), "step_up_code_missing");
    assert_eq!(browser.post("/api/account/step-up/sms", None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    assert!(app.sent.last_body().unwrap().contains("add a sign-in method"), "{:?}", app.sent.last_body());
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = browser.post("/api/account/step-up", Some(json!({"code": wrong}))).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "totp_invalid"));
    assert!(refused.body["message"].as_str().unwrap().contains("4 attempts left"), "{:?}", refused.body);
    let done = browser.post("/api/account/step-up", Some(json!({"code": code}))).await;
    assert_eq!(done.body, json!({"done": true, "password": false, "ways": []}));
    assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": code}))).await.code(), "step_up_code_missing", "used once");
    assert_eq!(browser.get("/api/account/step-up").await.body["done"], true);
    assert_eq!(browser.post("/api/account/totp/setup", None).await.status, 200);
}

#[tokio::test]
async fn a_step_up_code_waits_thirty_seconds_and_five_wrong_ones_burn_it() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    assert_eq!(browser.post("/api/account/step-up/sms", None).await.status, 204);
    let again = browser.post("/api/account/step-up/sms", None).await;
    assert_eq!((again.status.as_u16(), again.code()), (429, "step_up_code_too_soon"));
    assert_eq!(again.headers["retry-after"], "30");
    assert_eq!(app.sent.count(), 1, "nothing sent on a refusal");
    let code = app.sent.last_code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..4 {
        assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": wrong}))).await.code(), "totp_invalid");
    }
    // The fifth in a row also blocks the user's codes and links a while.
    let fifth = browser.post("/api/account/step-up", Some(json!({"code": wrong}))).await;
    assert_eq!((fifth.status.as_u16(), fifth.code()), (429, "attempts_blocked"));
    assert_eq!(fifth.headers["retry-after"], "900");
    let burnt = browser.post("/api/account/step-up", Some(json!({"code": code}))).await;
    assert_eq!((burnt.status.as_u16(), burnt.code()), (409, "step_up_code_missing"), "the right code after five wrong ones");
}

#[tokio::test]
async fn wrong_step_up_codes_count_with_wrong_link_passwords_of_the_user() {
    let app = spawn_app().await;
    let token = app.start_transfer(&crate::helpers::transfer_body("42.00"), "passkey").await;
    let link = app.latest_link().await;
    for _ in 0..3 {
        assert_eq!(app.register_start_with(&link, "wrong password").await.code(), "password_invalid");
    }
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    assert_eq!(browser.post("/api/account/step-up/sms", None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let fourth = browser.post("/api/account/step-up", Some(json!({"code": wrong}))).await;
    assert!(fourth.body["message"].as_str().unwrap().contains("1 attempts left"), "{:?}", fourth.body);
    let fifth = browser.post("/api/account/step-up", Some(json!({"code": wrong}))).await;
    assert_eq!((fifth.status.as_u16(), fifth.code()), (429, "attempts_blocked"));
    // Blocked everywhere: the right code here, the right password there.
    assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": code}))).await.code(), "attempts_blocked");
    assert_eq!(app.register_start(&link).await.code(), "password_locked");
    assert_eq!(app.poll(&token).await.body["result"], "waiting");
}

#[tokio::test]
async fn a_user_with_a_second_factor_steps_up_with_it_not_by_sms() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    // Through a trusted browser, or any password-only session: asked again.
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &key, true).await;
    browser.post("/api/account/sign-out", None).await;
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "signed_in", "the trusted browser skips the second step");
    let refused = browser.post("/api/account/passkeys/start", None).await;
    assert_eq!(step_up_of(&refused.body), &json!({"done": false, "password": false, "ways": ["totp"]}), "trust is no factor");
    assert_eq!(browser.post("/api/account/step-up/sms", None).await.code(), "step_up_sms_unavailable");
    app.clock.advance_millis(30_000);
    let code = key.code_at(app.clock.now()).unwrap();
    assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": code}))).await.body["done"], true);
    assert_eq!(browser.post("/api/account/passkeys/start", None).await.status, 200);
}

#[tokio::test]
async fn proofs_older_than_five_minutes_are_asked_again_password_and_code() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &key, false).await;
    assert_eq!(browser.get("/api/account/step-up").await.body["done"], true, "two factors just proven");
    // Busy for five minutes (the idle end is not reached), proofs age.
    for _ in 0..5 {
        app.clock.advance_millis(MINUTE);
        assert_eq!(browser.post("/api/account/session/keep-alive", None).await.status, 200);
    }
    let refused = browser.post("/api/account/passkeys/start", None).await;
    assert_eq!(step_up_of(&refused.body), &json!({"done": false, "password": true, "ways": ["totp"]}));
    let password = app.creds.user_password.clone();
    let wrong = browser.post("/api/account/step-up", Some(json!({"password": "not the password"}))).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (403, "password_invalid"));
    let half = browser.post("/api/account/step-up", Some(json!({"password": password}))).await;
    assert_eq!(half.body, json!({"done": false, "password": false, "ways": ["totp"]}));
    app.clock.advance_millis(30_000);
    let code = key.code_at(app.clock.now()).unwrap();
    assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": code}))).await.body["done"], true);
    assert_eq!(browser.post("/api/account/passkeys/start", None).await.status, 200);
}

#[tokio::test]
async fn factors_added_and_removed_are_told_by_sms_and_named_in_the_log() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    user_with_app(&app).await;
    let added = app.sent.last_body().unwrap();
    assert!(added.contains("an authenticator app was added") && added.contains("/account/security"), "{added}");
    let events = app.audit_of_user(&user_id, 20).await;
    assert!(events.iter().any(|e| e.kind == "factor.added" && e.detail["factor"] == "totp"), "{events:?}");

    // The user is signed in on two browsers; an admin resets the app.
    let mut phone = Browser::new(&app);
    phone.sign_in_as_user().await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    let removed = admin.request(Method::DELETE, &format!("/api/account/company/users/{user_id}/totp"), None, &[]).await;
    assert_eq!(removed.status, 204, "{:?}", removed.body);
    let notice = app.sent.last_body().unwrap();
    assert!(notice.contains("an authenticator app was removed from your account by an admin"), "{notice}");
    assert_eq!(phone.get("/api/account/security").await.code(), "session_ended", "the reset ended the user's sessions");
    let events = app.audit_of_user(&user_id, 20).await;
    let removal = events.iter().find(|e| e.kind == "factor.removed").unwrap();
    assert_eq!((removal.detail["factor"].as_str(), removal.detail["by_admin"].as_bool()), (Some("totp"), Some(true)));
}

#[tokio::test]
async fn signing_out_everywhere_ends_trusted_browsers_too() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &key, true).await;
    let trusted = browser.trusted.clone();
    assert!(trusted.is_some());
    assert_eq!(browser.post("/api/account/sign-out-everywhere", None).await.status, 204);
    assert!(browser.trusted.is_none(), "its cookie is removed");
    let mut again = Browser::new(&app);
    again.trusted = trusted;
    assert_eq!(again.sign_in_as_user().await.body["stage"], "second_factor", "the old trust no longer skips the second step");
}
