//! Passkeys in the account area: a passkey as a sign-in's second step
//! (once per challenge, under a new session secret), a discoverable
//! passkey added from the security page, and a sign-in with that passkey
//! alone.

use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::helpers::{soft_passkey, spawn_app, transfer_body, Browser, TestApp, ORIGIN};

/// A discoverable passkey added from the security page: the authenticator,
/// the credential's id and the user handle it keeps (as the wire has them).
struct Added {
    authenticator: SoftPasskey,
    credential_id: Value,
    user_handle: Value,
}

async fn add_passkey(browser: &mut Browser<'_>) -> Added {
    browser.stepped_up().await;
    let start = browser.post("/api/account/passkeys/start", None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    // The soft authenticator keeps no resident keys: it is told the options
    // of a non-discoverable passkey (the browser journey has a real one),
    // and the test plays the part of its key store (the user handle).
    let mut options = start.body.clone();
    options["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let mut authenticator = soft_passkey();
    let options = serde_json::from_value(options).unwrap();
    let answer = serde_json::to_value(authenticator.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap();
    let added = browser.post("/api/account/passkeys/finish", Some(answer.clone())).await;
    assert_eq!(added.status, 204, "{:?}", added.body);
    Added { authenticator, credential_id: answer["rawId"].clone(), user_handle: start.body["publicKey"]["user"]["id"].clone() }
}

/// A passkey sign-in's finish (the path naming its ceremony), and the
/// answer of a discoverable passkey to its challenge, as a browser sends
/// it: the credential the user picked, and the user handle it keeps.
async fn discoverable_answer(browser: &mut Browser<'_>, added: &mut Added, user_handle: &Value) -> (String, Value) {
    let start = browser.post("/api/account/passkey-sign-in", None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let public_key = &start.body["challenge"]["publicKey"];
    assert_eq!(
        (public_key["allowCredentials"].as_array().map(Vec::len), public_key["userVerification"].as_str()),
        (Some(0), Some("required"))
    );
    let mut options = start.body["challenge"].clone();
    options["publicKey"]["allowCredentials"] = json!([{"type": "public-key", "id": added.credential_id}]);
    let options = serde_json::from_value(options).unwrap();
    let mut answer = serde_json::to_value(added.authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap();
    answer["response"]["userHandle"] = user_handle.clone();
    (format!("/api/account/passkey-sign-in/{}", start.body["ceremony"].as_str().unwrap()), answer)
}

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
    browser.stepped_up().await;
    let start = browser.post("/api/account/passkeys/start", None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    let user = &start.body["publicKey"]["user"];
    assert_eq!(user["name"], app.creds.user_email.as_str(), "named by the email, not the phone number");
    let selection = &start.body["publicKey"]["authenticatorSelection"];
    assert_eq!((selection["residentKey"].as_str(), selection["userVerification"].as_str()), (Some("required"), Some("required")));
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

#[tokio::test]
async fn a_discoverable_passkey_signs_in_alone_once_per_challenge() {
    let app = spawn_app().await;
    let mut owner = Browser::new(&app);
    owner.sign_in_as_user().await;
    let mut added = add_passkey(&mut owner).await;

    // Another browser, no email, no password: the passkey alone.
    let mut browser = Browser::new(&app);
    let handle = added.user_handle.clone();
    let (finish, answer) = discoverable_answer(&mut browser, &mut added, &handle).await;
    let done = browser.post(&finish, Some(answer.clone())).await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    assert_eq!(
        (done.body["stage"].as_str(), done.body["user"]["email"].as_str()),
        (Some("signed_in"), Some(app.creds.user_email.as_str()))
    );
    assert!(browser.cookie.is_some(), "a session cookie");
    assert_eq!(browser.get("/api/account/security").await.status, 200);
    let events = app.audit_of_user(&app.user_id().await, 2).await;
    assert_eq!((events[0].kind.as_str(), events[0].detail["via"].as_str()), ("account.signed_in", Some("passkey")));
    assert_eq!((events[1].kind.as_str(), events[1].detail["factor"].as_str()), ("factor.used", Some("passkey")));

    // The same answer to the same ceremony again: its challenge is spent.
    let mut replay = Browser::new(&app);
    let refused = replay.post(&finish, Some(answer)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "ceremony_not_started"));
    assert!(replay.cookie.is_none());
}

#[tokio::test]
async fn a_passkey_sign_in_answers_its_own_fresh_challenge_with_its_owners_handle() {
    let app = spawn_app().await;
    let mut owner = Browser::new(&app);
    owner.sign_in_as_user().await;
    let mut added = add_passkey(&mut owner).await;
    let handle = added.user_handle.clone();

    // Another ceremony's answer, or a made-up ceremony: nothing to answer.
    let mut browser = Browser::new(&app);
    let (_, answer) = discoverable_answer(&mut browser, &mut added, &handle).await;
    let (other, _) = discoverable_answer(&mut browser, &mut added, &handle).await;
    let crossed = browser.post(&other, Some(answer.clone())).await;
    assert_eq!((crossed.status.as_u16(), crossed.code()), (400, "passkey_rejected"), "the other challenge was signed");
    let made_up = browser.post(&format!("/api/account/passkey-sign-in/{}", "A".repeat(43)), Some(answer)).await;
    assert_eq!((made_up.status.as_u16(), made_up.code()), (409, "ceremony_not_started"));
    assert!(browser.cookie.is_none());

    // Answered after five minutes: too late.
    let (finish, answer) = discoverable_answer(&mut browser, &mut added, &handle).await;
    app.clock.advance_millis(5 * 60_000 + 1);
    let late = browser.post(&finish, Some(answer)).await;
    assert_eq!((late.status.as_u16(), late.code()), (409, "ceremony_not_started"));

    // The user's passkey claiming to be the admin's: checked against the
    // admin's passkeys (none match), refused, logged on the admin's account.
    let admin = app.store.user_by_email(&passgate::email::Email::parse(&app.creds.admin_email).unwrap()).await.unwrap().unwrap();
    let admin_handle = json!(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, admin.webauthn_handle.as_bytes()));
    let (finish, answer) = discoverable_answer(&mut browser, &mut added, &admin_handle).await;
    let impostor = browser.post(&finish, Some(answer)).await;
    assert_eq!((impostor.status.as_u16(), impostor.code()), (400, "passkey_rejected"), "{:?}", impostor.body);
    assert!(browser.cookie.is_none(), "no session");
    let events = app.audit_of_user(&admin.id, 1).await;
    assert_eq!((events[0].kind.as_str(), events[0].detail["via"].as_str()), ("account.sign_in_refused", Some("passkey")));

    // A handle that names nobody.
    let nobody = json!(base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, uuid::Uuid::new_v4().as_bytes()));
    let (finish, answer) = discoverable_answer(&mut browser, &mut added, &nobody).await;
    let unknown = browser.post(&finish, Some(answer)).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (400, "passkey_rejected"));
    assert!(browser.cookie.is_none());
}

#[tokio::test]
async fn passkey_sign_ins_started_from_one_address_are_rate_limited() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    for start in 1..=60 {
        assert_eq!(browser.post("/api/account/passkey-sign-in", None).await.status, 200, "start {start}");
    }
    let slowed = browser.post("/api/account/passkey-sign-in", None).await;
    assert_eq!((slowed.status.as_u16(), slowed.code()), (429, "sign_in_slowed"));
    assert_eq!(slowed.headers["retry-after"], "1");
    app.clock.advance_millis(1_000);
    assert_eq!(browser.post("/api/account/passkey-sign-in", None).await.status, 200);
}

#[tokio::test]
async fn a_passkey_whose_counter_goes_back_is_refused_and_logged() {
    use passgate::clock::Clock;
    use passgate::store::PasskeyUse;
    let app = spawn_app().await;
    let mut owner = Browser::new(&app);
    owner.sign_in_as_user().await;
    let mut added = add_passkey(&mut owner).await;
    // A copy of the authenticator signed in meanwhile: the stored counter is ahead.
    let user_id = app.user_id().await;
    let stored = app.store.passkeys_of_user(&user_id).await.unwrap().remove(0);
    let ahead = PasskeyUse { passkey: &stored, new_sign_count: 1_000_000, evidence: None, now: app.clock.now() };
    let event = passgate::model::AuditEvent::account(
        passgate::model::AuditKind::FactorUsed,
        Some(&user_id),
        json!({}),
        &passgate::model::ClientInfo::default(),
        app.clock.now(),
    );
    assert!(app.store.record_passkey_sign_in(ahead, &event).await.unwrap());
    let mut browser = Browser::new(&app);
    let handle = added.user_handle.clone();
    let (path, answer) = discoverable_answer(&mut browser, &mut added, &handle).await;
    let refused = browser.post(&path, Some(answer)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "passkey_rejected"), "{:?}", refused.body);
    let events = app.audit_of_user(&user_id, 10).await;
    let logged = events.iter().find(|e| e.kind == "factor.refused").unwrap();
    assert_eq!(logged.detail["reason"], "counter_not_advanced", "{logged:?}");
}
