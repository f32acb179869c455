//! The user's own security: the overview of their factors, their passkeys
//! (rename, remove, never the last factor when two-factor is forced) and
//! the activity log (theirs, or an admin's company's), filtered and paged.

use axum::http::Method;
use serde_json::json;

use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::helpers::{soft_passkey, spawn_app, transfer_body, Browser, TestApp};

/// Enrols a first passkey through an SMS link.
async fn passkey_from_link(app: &TestApp) -> SoftPasskey {
    app.start_transfer(&transfer_body("10.00"), "passkey").await;
    let link = app.latest_link().await;
    let mut authenticator = soft_passkey();
    assert_eq!(app.register_passkey(&link, &mut authenticator).await.status, 200);
    authenticator
}

#[tokio::test]
async fn the_overview_lists_the_users_passkeys_which_they_rename_and_remove() {
    let app = spawn_app().await;
    let mut user = Browser::new(&app);
    user.sign_in_as_user().await;
    let empty = user.get("/api/account/security").await;
    assert_eq!(empty.status, 200, "{:?}", empty.body);
    assert_eq!(empty.body, json!({"two_factor": "opt_in", "authenticator_app": null, "recovery_codes_left": 0, "passkeys": []}));

    passkey_from_link(&app).await;
    let overview = user.get("/api/account/security").await;
    let passkey = &overview.body["passkeys"][0];
    assert_eq!((passkey["name"].is_null(), passkey["synced"].as_bool()), (true, Some(false)));
    // Its enrolment approved the payment: added and used at once.
    assert!(passkey["added_at"].is_string() && passkey["last_used_at"] == passkey["added_at"], "{passkey:?}");
    let path = format!("/api/account/passkeys/{}", passkey["id"].as_str().unwrap());

    assert_eq!(user.request(Method::PATCH, &path, Some(json!({"name": "  Work laptop  "})), &[]).await.status, 204);
    assert_eq!(user.get("/api/account/security").await.body["passkeys"][0]["name"], "Work laptop");
    for bad in ["", "   ", &"x".repeat(65), "tab\there"] {
        let refused = user.request(Method::PATCH, &path, Some(json!({"name": bad})), &[]).await;
        assert_eq!(
            (refused.status.as_u16(), refused.code(), refused.body["field"].as_str()),
            (422, "validation_failed", Some("name")),
            "{bad:?}"
        );
    }
    let unknown = user.request(Method::PATCH, "/api/account/passkeys/nope", Some(json!({"name": "x"})), &[]).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "not_found"));

    assert_eq!(user.request(Method::DELETE, &path, None, &[]).await.status, 204);
    assert_eq!(user.get("/api/account/security").await.body["passkeys"], json!([]));
    let gone = user.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "not_found"));
}

#[tokio::test]
async fn another_users_passkey_is_out_of_reach() {
    let app = spawn_app().await;
    passkey_from_link(&app).await;
    let passkeys = app.store.passkeys_of_user(&app.user_id().await).await.unwrap();
    let path = format!("/api/account/passkeys/{}", passkeys[0].id);
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    let renamed = admin.request(Method::PATCH, &path, Some(json!({"name": "mine now"})), &[]).await;
    assert_eq!((renamed.status.as_u16(), renamed.code()), (404, "not_found"));
    let removed = admin.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!((removed.status.as_u16(), removed.code()), (404, "not_found"));
    assert_eq!(app.store.passkeys_of_user(&app.user_id().await).await.unwrap().len(), 1);
}

#[tokio::test]
async fn when_two_factor_is_forced_the_last_factor_stays() {
    let app = spawn_app().await;
    // Signed in before any factor, then a first passkey from a link.
    let mut user = Browser::new(&app);
    user.sign_in_as_user().await;
    let mut authenticator = passkey_from_link(&app).await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    admin.request(Method::PUT, "/api/account/company/policy", Some(json!({"two_factor": "forced"})), &[]).await;

    let overview = user.get("/api/account/security").await;
    assert_eq!(overview.body["two_factor"], "forced");
    let path = format!("/api/account/passkeys/{}", overview.body["passkeys"][0]["id"].as_str().unwrap());
    let refused = user.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "last_factor"));
    assert_eq!(user.get("/api/account/security").await.body["passkeys"].as_array().unwrap().len(), 1);
    // With an authenticator app beside it (bound after a step-up with the
    // passkey), the passkey may go.
    assert_eq!(user.step_up_with_passkey(&mut authenticator).await.body["done"], true);
    let setup = user.post("/api/account/totp/setup", None).await;
    let key = passgate::account::totp::TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let code = key.code_at(passgate::clock::Clock::now(&app.clock)).unwrap();
    assert_eq!(user.post("/api/account/totp/confirm", Some(json!({"code": code}))).await.status, 200);
    assert_eq!(user.request(Method::DELETE, &path, None, &[]).await.status, 204);
}

#[tokio::test]
async fn the_activity_log_shows_the_users_events_filtered_and_paged() {
    let app = spawn_app().await;
    let mut user = Browser::new(&app);
    user.sign_in(&app.creds.user_email.clone(), "a wrong password for the log").await;
    user.sign_in_as_user().await;
    user.post("/api/account/sign-out", None).await;
    user.sign_in_as_user().await;

    let all = user.get("/api/account/activity").await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    let kinds: Vec<&str> = all.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["account.signed_in", "account.signed_out", "account.signed_in", "account.sign_in_refused"]);
    assert_eq!(all.body["next_before"], serde_json::Value::Null);

    let page = user.get("/api/account/activity?limit=2").await;
    assert_eq!(page.body["events"].as_array().unwrap().len(), 2);
    let before = page.body["next_before"].as_i64().unwrap();
    let next = user.get(&format!("/api/account/activity?limit=2&before={before}")).await;
    let older: Vec<&str> = next.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(older, ["account.signed_in", "account.sign_in_refused"]);

    passkey_from_link(&app).await;
    let factors = user.get("/api/account/activity?category=passkey").await;
    let kinds: Vec<&str> = factors.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["passkey.enrolled"]);
    let approvals = user.get("/api/account/activity?category=session").await;
    assert!(approvals.body["events"].as_array().unwrap().iter().all(|e| e["kind"].as_str().unwrap().starts_with("session.")));
    assert!(!approvals.body["events"].as_array().unwrap().is_empty(), "the SCA decisions are in the user's log");

    for bad in ["category=acc", "scope=everyone", "limit=many"] {
        let refused = user.get(&format!("/api/account/activity?{bad}")).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (422, "validation_failed"), "{bad}: {:?}", refused.body);
    }
    let company = user.get("/api/account/activity?scope=company").await;
    assert_eq!((company.status.as_u16(), company.code()), (403, "admin_only"));
}

#[tokio::test]
async fn an_admin_sees_the_companys_activity() {
    let app = spawn_app().await;
    let mut user = Browser::new(&app);
    user.sign_in_as_user().await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    let log = admin.get("/api/account/activity?scope=company&category=account").await;
    let users: Vec<&str> = log.body["events"].as_array().unwrap().iter().map(|e| e["user_id"].as_str().unwrap()).collect();
    let user_id = app.user_id().await;
    assert_eq!(users.len(), 2);
    assert!(users.contains(&user_id.as_str()), "{users:?}");
    let mine = admin.get("/api/account/activity").await;
    assert_eq!(mine.body["events"].as_array().unwrap().len(), 1, "the admin's own log is theirs only");
}
