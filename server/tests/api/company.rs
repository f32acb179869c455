//! Company administration (seed 001): the forced two-factor policy, the
//! report "users within a company", an admin removing a user's factor;
//! admins only, their own company only, never their own factors.

use axum::http::Method;
use passgate::account::totp::TotpKey;
use passgate::clock::Clock;
use passgate::email::Email;
use passgate::model::Role;
use passgate::password::{Password, PasswordHash};
use passgate::phone::Phone;
use serde_json::{json, Value};

use crate::helpers::{soft_passkey, spawn_app, transfer_body, Browser, TestApp};

pub(crate) async fn admin(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app);
    let reply = browser.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    assert_eq!(reply.body["stage"], "signed_in", "{:?}", reply.body);
    browser
}

/// Sets up and confirms an authenticator app from a signed-in (or
/// enrolling) browser; returns its key and the confirmation's answer.
async fn set_up_app(app: &TestApp, browser: &mut Browser<'_>) -> (TotpKey, Value) {
    browser.stepped_up().await;
    let setup = browser.post("/api/account/totp/setup", None).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let key = TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let code = key.code_at(app.clock.now()).unwrap();
    let confirmed = browser.post("/api/account/totp/confirm", Some(json!({"code": code}))).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    (key, confirmed.body)
}

fn user_in<'r>(report: &'r Value, email: &str) -> &'r Value {
    report["users"].as_array().unwrap().iter().find(|u| u["email"] == email).unwrap()
}

/// Another company with an admin of its own: (the admin's email, password).
async fn other_company(app: &TestApp) -> (String, String) {
    let now = app.clock.now();
    let company = app.store.ensure_company("Other SAS", now).await.unwrap();
    let user = app.store.ensure_user(&company, &Phone::parse("+33698765432").unwrap(), "Other Admin", now).await.unwrap();
    let password = "a long and unguessable other admin pass";
    let hash = PasswordHash::new(&Password::parse(password, &[]).unwrap()).unwrap();
    let email = "admin@other.example";
    app.store.set_credentials(&user, &Email::parse(email).unwrap(), &hash, Role::Admin).await.unwrap();
    (email.to_owned(), password.to_owned())
}

#[tokio::test]
async fn a_forced_policy_makes_a_user_set_up_a_second_factor_before_anything_else() {
    let app = spawn_app().await;
    let mut admin = admin(&app).await;
    assert_eq!(admin.request(Method::PUT, "/api/account/company/policy", Some(json!({"two_factor": "forced"})), &[]).await.status, 204);
    assert_eq!(admin.get("/api/account/company").await.body["two_factor"], "forced");

    let mut user = Browser::new(&app);
    let reply = user.sign_in_as_user().await;
    assert_eq!(reply.body["stage"], "enrol");
    // Nothing else is open: no skipping.
    let held = user.post("/api/account/sign-out-everywhere", None).await;
    assert_eq!((held.status.as_u16(), held.code()), (403, "second_factor_setup_required"));
    let enrolling = user.cookie.clone();
    let (_, confirmed) = set_up_app(&app, &mut user).await;
    assert_eq!(confirmed["session"]["stage"], "signed_in", "{confirmed:?}");
    assert_ne!(user.cookie, enrolling, "signed in under a new secret");
    assert_eq!(user.get("/api/account/session").await.body["stage"], "signed_in");
    // From now on the app is the second step.
    user.post("/api/account/sign-out", None).await;
    assert_eq!(user.sign_in_as_user().await.body["stage"], "second_factor");
    // An invalid policy is refused, naming the field.
    let bad = admin.request(Method::PUT, "/api/account/company/policy", Some(json!({"two_factor": "always"})), &[]).await;
    assert_eq!((bad.status.as_u16(), bad.code(), bad.body["field"].as_str()), (422, "validation_failed", Some("two_factor")));
}

#[tokio::test]
async fn the_report_lists_each_users_factors_and_their_last_use() {
    let app = spawn_app().await;
    let mut user = Browser::new(&app);
    user.sign_in_as_user().await;
    set_up_app(&app, &mut user).await;
    app.start_transfer(&transfer_body("10.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_passkey(&link, &mut soft_passkey()).await.status, 200);

    let mut admin = admin(&app).await;
    let report = admin.get("/api/account/company").await;
    assert_eq!(report.status, 200, "{:?}", report.body);
    assert_eq!((report.body["name"].as_str(), report.body["two_factor"].as_str()), (Some("Demo Company SAS"), Some("opt_in")));
    let camille = user_in(&report.body, &app.creds.user_email);
    assert_eq!(camille["role"], "member");
    assert!(camille["authenticator_app"]["last_used_at"].is_string(), "{camille:?}");
    assert_eq!(camille["passkeys"].as_array().unwrap().len(), 1);
    assert_eq!(camille["passkeys"][0]["synced"], false);
    assert_eq!(camille["paired_phone"], Value::Null);
    let alex = user_in(&report.body, &app.creds.admin_email);
    assert_eq!(
        (alex["role"].as_str(), &alex["authenticator_app"], alex["passkeys"].as_array().unwrap().len()),
        (Some("admin"), &Value::Null, 0)
    );
    // Members see none of it.
    let member = user.get("/api/account/company").await;
    assert_eq!((member.status.as_u16(), member.code()), (403, "admin_only"));
}

#[tokio::test]
async fn an_admin_removes_a_users_app_and_the_user_sets_up_a_new_one() {
    let app = spawn_app().await;
    let mut user = Browser::new(&app);
    user.sign_in_as_user().await;
    set_up_app(&app, &mut user).await;
    let user_id = app.user_id().await;
    let mut admin = admin(&app).await;
    admin.request(Method::PUT, "/api/account/company/policy", Some(json!({"two_factor": "forced"})), &[]).await;

    let path = format!("/api/account/company/users/{user_id}/totp");
    assert_eq!(user.request(Method::DELETE, &path, None, &[]).await.code(), "admin_only", "not by the user");
    assert_eq!(admin.request(Method::DELETE, &path, None, &[]).await.status, 204);
    let gone = admin.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "not_found"), "nothing left to remove");
    let events: Vec<_> = app.audit_of_user(&user_id, 5).await;
    assert_eq!(events[0].kind, "factor.removed");
    assert_eq!(events[0].detail["factor"], "totp");
    assert!(events[0].detail["by"].is_string());
    // Forced: the next sign-in asks for a new app, which the user sets up.
    user.post("/api/account/sign-out", None).await;
    assert_eq!(user.sign_in_as_user().await.body["stage"], "enrol");
    let (_, confirmed) = set_up_app(&app, &mut user).await;
    assert_eq!(confirmed["session"]["stage"], "signed_in");
}

#[tokio::test]
async fn an_admin_removes_a_users_passkey() {
    let app = spawn_app().await;
    app.start_transfer(&transfer_body("10.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_passkey(&link, &mut soft_passkey()).await.status, 200);
    let mut admin = admin(&app).await;
    let report = admin.get("/api/account/company").await;
    let camille = user_in(&report.body, &app.creds.user_email);
    let (user_id, passkey_id) = (camille["id"].as_str().unwrap(), camille["passkeys"][0]["id"].as_str().unwrap());
    let path = format!("/api/account/company/users/{user_id}/passkeys/{passkey_id}");
    assert_eq!(admin.request(Method::DELETE, &path, None, &[]).await.status, 204);
    assert!(app.store.passkeys_of_user(user_id).await.unwrap().is_empty());
    // With no passkey left, the next link enrols a first one again.
    let token = app.start_transfer(&transfer_body("11.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_and_approve(&link, &mut soft_passkey()).await.status, 200);
    assert_eq!(app.poll(&token).await.body["result"], "allow");
}

#[tokio::test]
async fn an_admin_does_not_reset_their_own_factors() {
    let app = spawn_app().await;
    let mut admin = admin(&app).await;
    set_up_app(&app, &mut admin).await;
    let admin_id = admin.get("/api/account/session").await.body["user"]["id"].as_str().unwrap().to_owned();
    let own = admin.request(Method::DELETE, &format!("/api/account/company/users/{admin_id}/totp"), None, &[]).await;
    assert_eq!((own.status.as_u16(), own.code()), (403, "own_factors"));
    assert!(app.store.totp_of_user(&admin_id).await.unwrap().is_some());
}

#[tokio::test]
async fn another_companys_admin_sees_and_changes_nothing() {
    let app = spawn_app().await;
    let mut user = Browser::new(&app);
    user.sign_in_as_user().await;
    set_up_app(&app, &mut user).await;
    let user_id = app.user_id().await;
    let (email, password) = other_company(&app).await;
    let mut stranger = Browser::new(&app);
    assert_eq!(stranger.sign_in(&email, &password).await.status, 200);

    let report = stranger.get("/api/account/company").await;
    assert_eq!(report.body["name"], "Other SAS");
    let emails: Vec<&str> = report.body["users"].as_array().unwrap().iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, ["admin@other.example"]);
    let removal = stranger.request(Method::DELETE, &format!("/api/account/company/users/{user_id}/totp"), None, &[]).await;
    assert_eq!((removal.status.as_u16(), removal.code()), (404, "not_found"), "as if unknown");
    assert!(app.store.totp_of_user(&user_id).await.unwrap().is_some());
    stranger.request(Method::PUT, "/api/account/company/policy", Some(json!({"two_factor": "forced"})), &[]).await;
    let mut admin = admin(&app).await;
    assert_eq!(admin.get("/api/account/company").await.body["two_factor"], "opt_in", "the demo company's policy is untouched");
}
