//! Pairing a phone (issue 24, seed 000): signed in on the phone, the user
//! proves the password and a code sent by SMS for this purpose (10
//! minutes, 30 s between two, five wrong burn it), the phone makes a
//! platform passkey and receives its device credential in a cookie under
//! `/device`. One phone per user; unpairing from the phone or the account
//! area ends the credential; each is logged and told by SMS.

use axum::http::Method;
use passgate::clock::Clock;
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::helpers::{soft_passkey, spawn_app, user_with_app, Browser, Reply, TestApp, ORIGIN};

const PAIR: &str = "?for=pair_phone";

/// Sends the pairing code and gives it back; the step-up's answer.
pub(crate) async fn prove_phone(browser: &mut Browser<'_>, app: &TestApp) -> Reply {
    let sent = browser.post(&format!("/api/account/step-up/sms{PAIR}"), None).await;
    assert_eq!(sent.status, 204, "{:?}", sent.body);
    let code = app.sent.last_code().unwrap();
    browser.post(&format!("/api/account/step-up{PAIR}"), Some(json!({"code": code}))).await
}

/// The phone's passkey ceremony, the soft authenticator playing the
/// platform one (it keeps no resident keys and is no platform one: told a
/// non-discoverable passkey of any attachment, as the account passkeys'
/// tests do; the browser journey has a real one); the finish's answer.
pub(crate) async fn make_phone_passkey(browser: &mut Browser<'_>, authenticator: &mut SoftPasskey) -> Reply {
    let start = browser.post("/api/account/phone/start", None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let mut options = start.body.clone();
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    options["publicKey"]["authenticatorSelection"]["authenticatorAttachment"] = Value::Null;
    let options = serde_json::from_value(options).unwrap();
    let answer = serde_json::to_value(authenticator.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap();
    browser.post("/api/account/phone/finish", Some(answer)).await
}

/// Signs in on a new browser (the phone) and pairs it; the phone.
pub(crate) async fn paired_phone(app: &TestApp) -> Browser<'_> {
    paired_phone_with_key(app).await.0
}

/// The same, with the phone's authenticator.
pub(crate) async fn paired_phone_with_key(app: &TestApp) -> (Browser<'_>, SoftPasskey) {
    let mut phone = Browser::new(app);
    phone.sign_in_as_user().await;
    assert_eq!(prove_phone(&mut phone, app).await.body["done"], true);
    let mut authenticator = soft_passkey();
    let paired = make_phone_passkey(&mut phone, &mut authenticator).await;
    assert_eq!(paired.status, 201, "{:?}", paired.body);
    (phone, authenticator)
}

#[tokio::test]
async fn a_phone_is_paired_with_the_password_and_a_code_by_sms_and_gets_its_own_credential() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    let mut phone = Browser::new(&app);
    phone.sign_in_as_user().await;
    let refused = phone.post("/api/account/phone/start", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "step_up_required"));
    assert_eq!(refused.body["step_up"], json!({"done": false, "password": false, "ways": ["sms"]}));

    let proven = prove_phone(&mut phone, &app).await;
    assert_eq!(proven.body, json!({"done": true, "password": false, "ways": []}));
    let sms = app.sent.last_body().unwrap();
    assert!(sms.contains("pair this phone") && sms.contains("expires in 10 minutes"), "{sms}");

    let start = phone.post("/api/account/phone/start", None).await;
    let selection = &start.body["publicKey"]["authenticatorSelection"];
    assert_eq!(
        (selection["authenticatorAttachment"].as_str(), selection["residentKey"].as_str(), selection["userVerification"].as_str()),
        (Some("platform"), Some("required"), Some("required")),
        "{selection}"
    );
    let paired = make_phone_passkey(&mut phone, &mut soft_passkey()).await;
    assert_eq!(paired.status, 201, "{:?}", paired.body);
    assert_eq!(paired.body["synced"], false, "the soft authenticator backs nothing up");
    let set_cookie = paired.headers.get("set-cookie").unwrap().to_str().unwrap();
    for attribute in ["Path=/device", "HttpOnly", "SameSite=Strict"] {
        assert!(set_cookie.contains(attribute), "{attribute}: {set_cookie}");
    }
    let credential = phone.phone.clone().unwrap();
    assert!(credential.len() >= 43, "256 bits in base64url: {credential}");

    let own = phone.get("/device/api/phone").await;
    assert_eq!((own.status.as_u16(), &own.body["paired_at"]), (200, &paired.body["paired_at"]));
    assert_eq!(phone.get("/api/account/phone").await.body, paired.body);
    let told = app.sent.last_body().unwrap();
    assert!(told.contains("a paired phone was added to your account"), "{told}");
    let events = app.audit_of_user(&user_id, 20).await;
    assert!(events.iter().any(|e| e.kind == "factor.added" && e.detail["factor"] == "paired_phone"), "{events:?}");
    let stored = app.store.paired_phone_of_user(&user_id).await.unwrap().unwrap();
    assert!(app.store.paired_phone_by_device(&passgate::token::Secret::parse(&credential).unwrap().hash()).await.unwrap().is_some());
    assert!(!app.store.registry_of_credential(stored.passkey.passkey.cred_id().as_ref()).await.unwrap().is_empty(), "registered");

    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    let report = admin.get("/api/account/company").await;
    let user = report.body["users"].as_array().unwrap().iter().find(|u| u["id"] == user_id.as_str()).unwrap();
    assert_eq!(user["paired_phone"]["added_at"], paired.body["paired_at"], "{user}");
}

#[tokio::test]
async fn a_binding_step_up_pairs_nothing_and_its_code_is_not_a_pairing_code() {
    let app = spawn_app().await;
    let mut phone = Browser::new(&app);
    phone.sign_in_as_user().await;
    phone.stepped_up().await; // the code sent to add a sign-in method
    let refused = phone.post("/api/account/phone/start", None).await;
    assert_eq!(refused.code(), "step_up_required", "fresh factors, but no pairing code");

    // A code sent to add a sign-in method, typed for a pairing: wrong.
    assert_eq!(phone.post("/api/account/step-up/sms", None).await.status, 429, "30 s after the last one");
    app.clock.advance_millis(30_000);
    assert_eq!(phone.post("/api/account/step-up/sms", None).await.status, 204);
    let bind_code = app.sent.last_code().unwrap();
    let wrong = phone.post(&format!("/api/account/step-up{PAIR}"), Some(json!({"code": bind_code}))).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (403, "totp_invalid"), "{:?}", wrong.body);
}

#[tokio::test]
async fn an_app_users_pairing_code_still_comes_by_sms_and_the_app_is_not_its_second_factor() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut phone = Browser::new(&app);
    crate::helpers::two_factor_sign_in(&app, &mut phone, &key, false).await;
    let due = phone.get(&format!("/api/account/step-up{PAIR}")).await;
    assert_eq!(due.body["ways"], json!(["sms"]), "{:?}", due.body);
    // Five minutes later the password is stale; the app's code, fresh,
    // does not stand in for it (two possessions are one category).
    app.clock.advance_millis(4 * 60_000);
    assert_eq!(phone.post("/api/account/session/keep-alive", None).await.status, 200);
    app.clock.advance_millis(61_000);
    let code = key.code_at(app.clock.now()).unwrap();
    assert_eq!(phone.post("/api/account/step-up", Some(json!({"code": code}))).await.status, 200, "the app proved possession");
    let answer = prove_phone(&mut phone, &app).await;
    assert_eq!(answer.body, json!({"done": false, "password": true, "ways": []}), "{:?}", answer.body);
    let password = app.creds.user_password.clone();
    let done = phone.post(&format!("/api/account/step-up{PAIR}"), Some(json!({"password": password}))).await;
    assert_eq!(done.body["done"], true, "{:?}", done.body);
}

#[tokio::test]
async fn a_pairing_code_lives_ten_minutes_and_five_wrong_ones_burn_it() {
    let app = spawn_app().await;
    let mut phone = Browser::new(&app);
    phone.sign_in_as_user().await;
    let step_up = format!("/api/account/step-up{PAIR}");
    assert_eq!(phone.post(&format!("/api/account/step-up/sms{PAIR}"), None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    // Nine minutes later (the session kept alive), the code still works;
    // the password, older than five minutes, is asked again.
    for _ in 0..3 {
        app.clock.advance_millis(3 * 60_000);
        assert_eq!(phone.post("/api/account/session/keep-alive", None).await.status, 200);
    }
    let late = phone.post(&step_up, Some(json!({"code": code}))).await;
    assert_eq!(late.body, json!({"done": false, "password": true, "ways": []}), "the code proved the phone");

    app.clock.advance_millis(30_000);
    assert_eq!(phone.post(&format!("/api/account/step-up/sms{PAIR}"), None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    app.clock.advance_millis(4 * 60_000);
    assert_eq!(phone.post("/api/account/session/keep-alive", None).await.status, 200);
    app.clock.advance_millis(4 * 60_000);
    assert_eq!(phone.post("/api/account/session/keep-alive", None).await.status, 200);
    app.clock.advance_millis(2 * 60_000 + 1);
    let expired = phone.post(&step_up, Some(json!({"code": code}))).await;
    assert_eq!(expired.code(), "step_up_code_missing", "ten minutes and one millisecond");

    assert_eq!(phone.post(&format!("/api/account/step-up/sms{PAIR}"), None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for left in (1..5).rev() {
        let refused = phone.post(&step_up, Some(json!({"code": wrong}))).await;
        assert!(refused.body["message"].as_str().unwrap().contains(&format!("{left} attempts left")), "{:?}", refused.body);
    }
    assert_eq!(phone.post(&step_up, Some(json!({"code": wrong}))).await.code(), "attempts_blocked", "five in a row: the user is blocked");
    let burnt = phone.post(&step_up, Some(json!({"code": code}))).await;
    assert_eq!(burnt.code(), "step_up_code_missing", "the right code no longer helps: {:?}", burnt.body);
}

#[tokio::test]
async fn one_phone_per_user_until_it_is_unpaired_from_the_account_area() {
    let app = spawn_app().await;
    let (mut old, mut key) = paired_phone_with_key(&app).await;
    let mut new = Browser::new(&app);
    crate::phone_confirmations::sign_in_confirmed(&mut new, &mut old, &mut key).await;
    assert_eq!(prove_phone(&mut new, &app).await.body["done"], true);
    let refused = new.post("/api/account/phone/start", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "phone_already_paired"));

    let unpaired = new.request(Method::DELETE, "/api/account/phone", None, &[]).await;
    assert_eq!(unpaired.status, 204, "{:?}", unpaired.body);
    let told = app.sent.last_body().unwrap();
    assert!(told.contains("a paired phone was removed from your account"), "{told}");
    let gone = old.get("/device/api/phone").await;
    assert_eq!((gone.status.as_u16(), gone.code()), (401, "phone_not_paired"), "the old credential ended");
    assert_eq!(new.request(Method::DELETE, "/api/account/phone", None, &[]).await.status, 404);

    let paired = make_phone_passkey(&mut new, &mut soft_passkey()).await;
    assert_eq!(paired.status, 201, "{:?}", paired.body);
    assert_eq!(new.get("/device/api/phone").await.status, 200);
    assert_eq!(old.get("/device/api/phone").await.status, 401);
}

#[tokio::test]
async fn the_phone_unpairs_itself_and_its_cookie_goes() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    let mut phone = paired_phone(&app).await;
    let credential = phone.phone.clone();
    let unpaired = phone.request(Method::DELETE, "/device/api/phone", None, &[]).await;
    assert_eq!(unpaired.status, 204, "{:?}", unpaired.body);
    assert!(phone.phone.is_none(), "the cookie is removed");
    phone.phone = credential;
    assert_eq!(phone.get("/device/api/phone").await.code(), "phone_not_paired");
    assert_eq!(phone.get("/api/account/phone").await.status, 404);
    let events = app.audit_of_user(&user_id, 20).await;
    let removal = events.iter().find(|e| e.kind == "factor.removed").unwrap();
    assert_eq!((removal.detail["factor"].as_str(), removal.detail["by"].as_str()), (Some("paired_phone"), Some("phone")));
}

#[tokio::test]
async fn the_phones_api_refuses_a_missing_or_unknown_credential_and_another_origin() {
    let app = spawn_app().await;
    let mut stranger = Browser::new(&app);
    let missing = stranger.get("/device/api/phone").await;
    assert_eq!((missing.status.as_u16(), missing.code()), (401, "phone_not_paired"));
    stranger.phone = Some(passgate::token::Secret::generate().unwrap().expose().to_owned());
    assert_eq!(stranger.get("/device/api/phone").await.code(), "phone_not_paired");
    stranger.phone = Some("not base64url!".into());
    assert_eq!(stranger.get("/device/api/phone").await.code(), "phone_not_paired");

    let mut phone = paired_phone(&app).await;
    let cross = phone.request(Method::DELETE, "/device/api/phone", None, &[("origin", "https://evil.example")]).await;
    assert_eq!((cross.status.as_u16(), cross.code()), (403, "csrf_refused"));
    assert_eq!(phone.get("/device/api/phone").await.status, 200, "still paired");
}

#[tokio::test]
async fn an_admins_reset_ends_a_lost_phone_and_the_user_pairs_another() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    let mut lost = paired_phone(&app).await;
    let path = format!("/api/account/company/users/{user_id}/phone");
    let refused = lost.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "admin_only"), "not by the user");

    let mut admin = crate::company::admin(&app).await;
    let reset = admin.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!(reset.status, 204, "{:?}", reset.body);
    let gone = lost.get("/device/api/phone").await;
    assert_eq!((gone.status.as_u16(), gone.code()), (401, "phone_not_paired"), "the lost phone's credential ended");
    let told = app.sent.last_body().unwrap();
    assert!(told.contains("a paired phone was removed from your account by an admin"), "{told}");
    let admin_id = admin.get("/api/account/session").await.body["user"]["id"].as_str().unwrap().to_owned();
    let events = app.audit_of_user(&user_id, 20).await;
    let removal = events.iter().find(|e| e.kind == "factor.removed").unwrap();
    assert_eq!((removal.detail["by"].as_str(), removal.detail["admin"].as_str()), (Some("admin"), Some(admin_id.as_str())));
    assert_eq!(admin.request(Method::DELETE, &path, None, &[]).await.status, 404, "nothing left to reset");
    assert_eq!(
        admin.get("/api/account/company").await.body["users"].as_array().unwrap().iter().find(|u| u["id"] == user_id.as_str()).unwrap()
            ["paired_phone"],
        Value::Null
    );

    let mut new = Browser::new(&app);
    new.sign_in_as_user().await;
    assert_eq!(prove_phone(&mut new, &app).await.body["done"], true);
    assert_eq!(make_phone_passkey(&mut new, &mut soft_passkey()).await.status, 201);
}
