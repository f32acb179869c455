//! Passkeys in the account area: a passkey as a sign-in's second step
//! (once per challenge, under a new session secret), and a discoverable
//! passkey added from the security page.

use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::helpers::{soft_passkey, spawn_app, transfer_body, Browser, TestApp, ORIGIN};

async fn passkey_from_link(app: &TestApp) -> SoftPasskey {
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("10.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_passkey(&link, &mut authenticator).await.status, 200);
    authenticator
}

async fn assertion(browser: &mut Browser<'_>, authenticator: &mut SoftPasskey) -> Value {
    let start = browser.post("/api/account/sign-in/passkey/start", None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let options = serde_json::from_value(start.body).unwrap();
    serde_json::to_value(authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap()
}

#[tokio::test]
async fn a_passkey_is_the_second_step_once_per_challenge() {
    let app = spawn_app().await;
    let mut authenticator = passkey_from_link(&app).await;
    let mut browser = Browser::new(&app);
    let step = browser.sign_in_as_user().await;
    assert_eq!(step.body["second_factors"], json!(["passkey"]));
    let half = browser.cookie.clone();
    let answer = assertion(&mut browser, &mut authenticator).await;
    let done = browser.post("/api/account/sign-in/passkey/finish", Some(answer.clone())).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(done.body["stage"], "signed_in");
    assert_ne!(browser.cookie, half);
    // The same answer again, from the old session: nothing (its challenge is spent).
    let mut replay = Browser::new(&app);
    (replay.cookie, replay.csrf) = (half, None);
    let refused = replay.post("/api/account/sign-in/passkey/finish", Some(answer)).await;
    assert_ne!(refused.status, 200, "{:?}", refused.body);
    let events = app.audit_of_user(&app.user_id().await, 5).await;
    assert_eq!(events[1].kind, "factor.used");
    assert_eq!(events[1].detail["factor"], "passkey");
}

#[tokio::test]
async fn a_finished_challenge_does_not_answer_twice() {
    let app = spawn_app().await;
    let mut authenticator = passkey_from_link(&app).await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    let answer = assertion(&mut browser, &mut authenticator).await;
    // A wrong answer burns the challenge: the right one then finds none.
    let mut tampered = answer.clone();
    tampered["response"]["signature"] = json!("AAAA");
    let wrong = browser.post("/api/account/sign-in/passkey/finish", Some(tampered)).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (400, "passkey_rejected"));
    let late = browser.post("/api/account/sign-in/passkey/finish", Some(answer)).await;
    assert_eq!((late.status.as_u16(), late.code()), (409, "ceremony_not_started"));
    assert_eq!(browser.get("/api/account/session").await.body["stage"], "second_factor");
}

#[tokio::test]
async fn without_a_passkey_there_is_no_passkey_step() {
    let app = spawn_app().await;
    passkey_from_link(&app).await;
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    let refused = admin.post("/api/account/sign-in/passkey/start", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "already_signed_in"), "the admin has no second step");
}

#[tokio::test]
async fn a_signed_in_user_adds_a_discoverable_passkey_then_signs_in_with_it() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    let start = browser.post("/api/account/passkeys/start", None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let selection = &start.body["publicKey"]["authenticatorSelection"];
    assert_eq!((selection["residentKey"].as_str(), selection["userVerification"].as_str()), (Some("required"), Some("required")));
    // The soft authenticator keeps no resident keys: it is told the options
    // of a non-discoverable passkey (the browser journey has a real one).
    let mut options = start.body.clone();
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let mut authenticator = soft_passkey();
    let options = serde_json::from_value(options).unwrap();
    let answer = authenticator.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
    let added = browser.post("/api/account/passkeys/finish", Some(serde_json::to_value(&answer).unwrap())).await;
    assert_eq!(added.status, 204, "{:?}", added.body);
    let again = browser.post("/api/account/passkeys/finish", Some(serde_json::to_value(&answer).unwrap())).await;
    assert_eq!(again.code(), "ceremony_not_started", "one answer per challenge");
    assert_eq!(browser.get("/api/account/security").await.body["passkeys"].as_array().unwrap().len(), 1);

    // From now on the passkey is the user's second step.
    browser.post("/api/account/sign-out", None).await;
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "second_factor");
    let answer = assertion(&mut browser, &mut authenticator).await;
    assert_eq!(browser.post("/api/account/sign-in/passkey/finish", Some(answer)).await.body["stage"], "signed_in");
}
