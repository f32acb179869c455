//! Users change their own factors (issue 22): they replace their
//! authenticator app and make new recovery codes themselves, under the
//! factor-binding rule — two factors within 5 minutes or, the old app
//! being lost, the password and a code sent by SMS to the registered
//! phone, a proof that admits replacing the app and nothing else. The
//! company's only admin goes the same way.

use axum::http::Method;
use passgate::account::totp::TotpKey;
use passgate::clock::Clock;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, two_factor_sign_in, user_with_app, Browser, TestApp};

const STEP: i64 = 30_000;

fn codes_of(body: &Value) -> Vec<String> {
    body["recovery_codes"].as_array().expect("recovery codes").iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

/// Sets up the replacing app (the session's proofs must be fresh) and
/// confirms it; its key and the new recovery codes.
async fn replace_app(app: &TestApp, browser: &mut Browser<'_>) -> (TotpKey, Vec<String>) {
    let setup = browser.post("/api/account/totp/setup", None).await;
    assert_eq!((setup.status.as_u16(), &setup.body["replacing"]), (200, &json!(true)), "{:?}", setup.body);
    let key = TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let confirmed = browser.post("/api/account/totp/confirm", Some(json!({"code": key.code_at(app.clock.now()).unwrap()}))).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    (key, codes_of(&confirmed.body))
}

/// A second step with `code` at `path` from a new sign-in: its status.
/// A new browser's sign-in with the password then `code` at `path`: the
/// second step's status and code.
async fn second_step(app: &TestApp, path: &str, code: &str) -> (u16, String) {
    let mut browser = Browser::new(app);
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "second_factor");
    let reply = browser.post(path, Some(json!({"code": code}))).await;
    (reply.status.as_u16(), reply.code().to_owned())
}

#[tokio::test]
async fn a_user_replaces_their_app_and_the_old_one_works_until_the_new_one_is_confirmed() {
    let app = spawn_app().await;
    let old = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &old, false).await;
    let old_codes = codes_of(&browser.post("/api/account/recovery-codes", None).await.body);
    let user = app.user_id().await;

    let setup = browser.post("/api/account/totp/setup", None).await;
    assert_eq!((setup.status.as_u16(), &setup.body["replacing"]), (200, &json!(true)), "{:?}", setup.body);
    let new = TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    // Not confirmed yet: the old app still signs in, the new one does not.
    app.clock.advance_millis(STEP);
    assert_eq!(
        second_step(&app, "/api/account/sign-in/totp", &new.code_at(app.clock.now()).unwrap()).await,
        (403, "totp_invalid".to_owned())
    );
    assert_eq!(second_step(&app, "/api/account/sign-in/totp", &old.code_at(app.clock.now()).unwrap()).await.0, 200);
    let wrong = browser.post("/api/account/totp/confirm", Some(json!({"code": old.code_at(app.clock.now()).unwrap()}))).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (403, "totp_invalid"), "the old app's code confirms nothing");

    let confirmed = browser.post("/api/account/totp/confirm", Some(json!({"code": new.code_at(app.clock.now()).unwrap()}))).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let new_codes = codes_of(&confirmed.body);
    assert_eq!(new_codes.len(), 10);
    assert!(app.sent.last_body().unwrap().contains("authenticator app was replaced"), "{:?}", app.sent.last_body());
    let stored = app.store.totp_of_user(&user).await.unwrap().unwrap();
    assert!(stored.confirmed_at.is_some() && stored.replacing_since.is_none());

    // The old app and its recovery codes stop working; the new ones sign in.
    app.clock.advance_millis(STEP);
    assert_eq!(
        second_step(&app, "/api/account/sign-in/totp", &old.code_at(app.clock.now()).unwrap()).await,
        (403, "totp_invalid".to_owned())
    );
    assert_eq!(second_step(&app, "/api/account/sign-in/recovery-code", &old_codes[0]).await, (403, "totp_invalid".to_owned()));
    assert_eq!(second_step(&app, "/api/account/sign-in/totp", &new.code_at(app.clock.now()).unwrap()).await.0, 200);
    assert_eq!(second_step(&app, "/api/account/sign-in/recovery-code", &new_codes[0]).await.0, 200);
    let kinds: Vec<String> = app.audit_of_user(&user, 40).await.into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"factor.replaced".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn a_user_who_lost_their_app_replaces_it_with_the_password_and_a_code_by_sms() {
    let app = spawn_app().await;
    let old = user_with_app(&app).await;
    // A trusted browser signs in with the password alone: no app at hand.
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &old, true).await;
    browser.post("/api/account/sign-out", None).await;
    app.clock.advance_millis(6 * 60_000);
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "signed_in");

    // Binding anything else, the phone is no way; replacing the app, it is.
    assert_eq!(browser.get("/api/account/step-up").await.body, json!({"done": false, "password": false, "ways": ["totp"]}));
    let due = browser.get("/api/account/step-up?for=replace_app").await;
    assert_eq!(due.body, json!({"done": false, "password": false, "ways": ["totp", "sms"]}));
    assert_eq!(browser.post("/api/account/step-up/sms", None).await.code(), "step_up_sms_unavailable");
    assert_eq!(browser.post("/api/account/step-up/sms?for=replace_app", None).await.status, 204);
    assert!(app.sent.last_body().unwrap().contains("replace your authenticator app"), "{:?}", app.sent.last_body());
    let code = app.sent.last_code().unwrap();
    let proven = browser.post("/api/account/step-up?for=replace_app", Some(json!({"code": code, "by_sms": true}))).await;
    assert_eq!(proven.body, json!({"done": true, "password": false, "ways": []}), "{:?}", proven.body);

    // That proof of the phone binds no passkey and renews no codes.
    assert_eq!(browser.get("/api/account/step-up").await.body["done"], false);
    for path in ["/api/account/passkeys/start", "/api/account/recovery-codes"] {
        let refused = browser.post(path, None).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (403, "step_up_required"), "{path}");
    }
    let (new, _) = replace_app(&app, &mut browser).await;
    app.clock.advance_millis(STEP);
    assert_eq!(second_step(&app, "/api/account/sign-in/totp", &new.code_at(app.clock.now()).unwrap()).await.0, 200);
    assert_eq!(
        second_step(&app, "/api/account/sign-in/totp", &old.code_at(app.clock.now()).unwrap()).await,
        (403, "totp_invalid".to_owned())
    );
}

#[tokio::test]
async fn a_wrong_code_by_sms_is_counted_and_an_unknown_purpose_refused() {
    let app = spawn_app().await;
    let old = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &old, false).await;
    // A wrong `by_sms` code is counted like any step-up code.
    assert_eq!(browser.post("/api/account/step-up/sms?for=replace_app", None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let refused = browser.post("/api/account/step-up?for=replace_app", Some(json!({"code": wrong, "by_sms": true}))).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "totp_invalid"));
    assert!(refused.body["message"].as_str().unwrap().contains("4 attempts left"), "{:?}", refused.body);
    let bad = browser.post("/api/account/step-up?for=everything", Some(json!({"code": code, "by_sms": true}))).await;
    assert_eq!((bad.status.as_u16(), bad.code()), (422, "validation_failed"), "{:?}", bad.body);
}

#[tokio::test]
async fn new_recovery_codes_replace_the_old_ones_under_the_binding_rule() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &key, false).await;
    let first = browser.post("/api/account/recovery-codes", None).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let old_codes = codes_of(&first.body);
    assert!(app.sent.last_body().unwrap().contains("new recovery codes were made"), "{:?}", app.sent.last_body());

    // Five busy minutes later, the proofs are old: asked again, not by SMS.
    for _ in 0..5 {
        app.clock.advance_millis(60_000);
        assert_eq!(browser.post("/api/account/session/keep-alive", None).await.status, 200);
    }
    let refused = browser.post("/api/account/recovery-codes", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "step_up_required"));
    assert_eq!(refused.body["step_up"], json!({"done": false, "password": true, "ways": ["totp"]}));
    let password = app.creds.user_password.clone();
    browser.post("/api/account/step-up", Some(json!({"password": password}))).await;
    let code = key.code_at(app.clock.now()).unwrap();
    assert_eq!(browser.post("/api/account/step-up", Some(json!({"code": code}))).await.body["done"], true);
    let renewed = browser.post("/api/account/recovery-codes", None).await;
    assert_eq!(renewed.status, 200, "{:?}", renewed.body);
    let new_codes = codes_of(&renewed.body);
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));

    assert_eq!(second_step(&app, "/api/account/sign-in/recovery-code", &old_codes[1]).await, (403, "totp_invalid".to_owned()));
    assert_eq!(second_step(&app, "/api/account/sign-in/recovery-code", &new_codes[1]).await.0, 200);
    let kinds: Vec<String> = app.audit_of_user(&app.user_id().await, 40).await.into_iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&"factor.recovery_codes_renewed".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn without_an_app_there_are_no_recovery_codes_to_renew() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    browser.stepped_up().await;
    let refused = browser.post("/api/account/recovery-codes", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "totp_not_set_up"));
}

#[tokio::test]
async fn two_renewals_at_once_leave_one_set_of_ten() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &key, false).await;
    let (cookie, csrf) = (browser.cookie.clone(), browser.csrf.clone());
    let renewals = (0..4).map(|_| {
        let (app, cookie, csrf) = (app.clone(), cookie.clone(), csrf.clone());
        tokio::spawn(async move {
            let mut browser = Browser::new(&app);
            (browser.cookie, browser.csrf) = (cookie, csrf);
            let reply = browser.post("/api/account/recovery-codes", None).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
            codes_of(&reply.body)
        })
    });
    let sets: Vec<Vec<String>> = futures::future::join_all(renewals).await.into_iter().map(Result::unwrap).collect();
    let user = app.user_id().await;
    assert_eq!(app.store.recovery_codes_left(&user).await.unwrap(), 10);
    // Exactly one set works: the last one written.
    let mut working = 0;
    for set in &sets {
        if second_step(&app, "/api/account/sign-in/recovery-code", &set[0]).await.0 == 200 {
            working += 1;
        }
    }
    assert_eq!(working, 1, "{sets:?}");
}

#[tokio::test]
async fn the_companys_only_admin_replaces_their_own_app_and_renews_their_codes() {
    let app = spawn_app().await;
    let mut admin = Browser::new(&app);
    let (email, password) = (app.creds.admin_email.clone(), app.creds.admin_password.clone());
    assert_eq!(admin.sign_in(&email, &password).await.status, 200);
    let report = admin.get("/api/account/company").await;
    let admins = report.body["users"].as_array().unwrap().iter().filter(|u| u["role"] == "admin").count();
    assert_eq!(admins, 1, "{:?}", report.body);
    admin.stepped_up().await;
    let setup = admin.post("/api/account/totp/setup", None).await;
    let old = TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    assert_eq!(admin.post("/api/account/totp/confirm", Some(json!({"code": old.code_at(app.clock.now()).unwrap()}))).await.status, 200);
    // Admins cannot reset their own factors from the company page...
    let admin_id =
        report.body["users"].as_array().unwrap().iter().find(|u| u["role"] == "admin").unwrap()["id"].as_str().unwrap().to_owned();
    let own = admin.request(Method::DELETE, &format!("/api/account/company/users/{admin_id}/totp"), None, &[]).await;
    assert_eq!(own.code(), "own_factors");
    // ...and need not: they renew and replace them as every user does.
    assert_eq!(admin.post("/api/account/recovery-codes", None).await.status, 200);
    app.clock.advance_millis(STEP);
    let (new, codes) = replace_app(&app, &mut admin).await;
    assert_eq!(codes.len(), 10);
    // The admin's next sign-in takes the new app's code, not the old one's.
    app.clock.advance_millis(STEP);
    for (key, answer) in [(&old, (403, "totp_invalid")), (&new, (200, ""))] {
        let mut browser = Browser::new(&app);
        assert_eq!(browser.sign_in(&email, &password).await.body["stage"], "second_factor");
        let reply = browser.post("/api/account/sign-in/totp", Some(json!({"code": key.code_at(app.clock.now()).unwrap()}))).await;
        assert_eq!((reply.status.as_u16(), reply.code()), answer, "{:?}", reply.body);
    }
}
