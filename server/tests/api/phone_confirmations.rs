//! What the paired phone confirms for the account area (issue 24, seed
//! 000): a sign-in on another browser as its second step (then the
//! 90-day trust offer), and pairing a new phone in its place. The phone
//! is pushed the request, sees where it comes from, allows it with its
//! passkey or refuses it (final, told by SMS); the asking session uses an
//! allowed one once, within two minutes; one waits per user, and a new
//! request comes at most every 30 s.

use axum::http::Method;
use serde_json::Value;
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::helpers::{soft_passkey, spawn_app, transfer_body, Browser, Reply, ORIGIN};
use crate::pairing::{make_phone_passkey, paired_phone_with_key, prove_phone};

/// The assertion of the phone's passkey over confirmation `id`'s challenge.
async fn assertion(phone: &mut Browser<'_>, key: &mut SoftPasskey, id: &str) -> Value {
    let start = phone.post(&format!("/device/api/confirmations/{id}/start"), None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    assert_eq!(start.body["publicKey"]["userVerification"], "required");
    let options = serde_json::from_value(start.body).unwrap();
    serde_json::to_value(key.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap()
}

/// The id of the one confirmation waiting on the phone.
async fn waiting_id(phone: &mut Browser<'_>) -> String {
    let waiting = phone.get("/device/api/confirmations").await;
    assert_eq!(waiting.body.as_array().map(Vec::len), Some(1), "{:?}", waiting.body);
    waiting.body[0]["id"].as_str().unwrap().to_owned()
}

/// The phone allows what waits on it with its passkey.
pub(crate) async fn allow_on_phone(phone: &mut Browser<'_>, key: &mut SoftPasskey) -> Reply {
    let id = waiting_id(phone).await;
    let answer = assertion(phone, key, &id).await;
    phone.post(&format!("/device/api/confirmations/{id}/finish"), Some(answer)).await
}

/// Signs `browser` in as the demo user, the second step confirmed on the
/// paired phone.
pub(crate) async fn sign_in_confirmed(browser: &mut Browser<'_>, phone: &mut Browser<'_>, key: &mut SoftPasskey) {
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "second_factor");
    assert_eq!(browser.post("/api/account/sign-in/phone", None).await.status, 202);
    assert_eq!(allow_on_phone(phone, key).await.status, 200);
    let done = browser.post("/api/account/sign-in/phone/finish", None).await;
    assert_eq!(done.body["stage"], "signed_in", "{:?}", done.body);
}

#[tokio::test]
async fn a_sign_in_elsewhere_is_confirmed_on_the_paired_phone_then_the_browser_may_be_trusted() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    let (mut phone, mut key) = paired_phone_with_key(&app).await;
    let mut laptop = Browser::new(&app);
    let signing = laptop.sign_in_as_user().await;
    assert_eq!(signing.body["stage"], "second_factor");
    assert!(signing.body["second_factors"].as_array().unwrap().contains(&"paired_phone".into()), "{:?}", signing.body);

    let asked =
        laptop.request(Method::POST, "/api/account/sign-in/phone", None, &[("user-agent", "Mozilla/5.0 (X11; Linux) Firefox/133.0")]).await;
    assert_eq!((asked.status.as_u16(), asked.body["expires_in_secs"].as_u64()), (202, Some(120)), "{:?}", asked.body);
    let pushed = Browser::new(&app).get("/dev/push").await.body[0].clone();
    let id = waiting_id(&mut phone).await;
    assert_eq!((pushed["confirmation_id"].as_str(), &pushed["session_id"]), (Some(id.as_str()), &Value::Null));
    let shown = phone.get("/device/api/confirmations").await.body[0].clone();
    assert_eq!((shown["purpose"].as_str(), shown["browser"].as_str()), (Some("sign_in"), Some("Firefox on Linux")));

    let early = laptop.post("/api/account/sign-in/phone/finish", None).await;
    assert_eq!((early.status.as_u16(), early.code()), (409, "phone_confirmation_pending"));
    assert_eq!(laptop.get("/api/account/sign-in/phone").await.body["state"], "waiting");
    let allowed = allow_on_phone(&mut phone, &mut key).await;
    assert_eq!((allowed.status.as_u16(), allowed.body["state"].as_str()), (200, Some("allowed")), "{:?}", allowed.body);
    assert_eq!(laptop.get("/api/account/sign-in/phone").await.body["state"], "allowed");

    let done = laptop.post("/api/account/sign-in/phone/finish?trust_browser=true", None).await;
    assert_eq!(done.body["stage"], "signed_in", "{:?}", done.body);
    assert!(laptop.trusted.is_some(), "the 90-day trust offer taken");
    let again = laptop.post("/api/account/sign-in/phone/finish", None).await;
    assert_eq!(again.code(), "already_signed_in", "used once");
    // The trusted browser skips the second step next time.
    laptop.post("/api/account/sign-out", None).await;
    assert_eq!(laptop.sign_in_as_user().await.body["stage"], "signed_in");

    let events = app.audit_of_user(&user_id, 30).await;
    let used = events.iter().find(|e| e.kind == "factor.used").unwrap();
    assert_eq!((used.detail["factor"].as_str(), used.detail["purpose"].as_str()), (Some("paired_phone"), Some("sign_in")));
    assert!(events.iter().any(|e| e.kind == "account.signed_in" && e.detail["via"] == "paired_phone"), "{events:?}");
    let phone_row = app.store.paired_phone_of_user(&user_id).await.unwrap().unwrap();
    assert!(phone_row.last_used_at.is_some(), "the phone's passkey use is recorded");
}

#[tokio::test]
async fn a_refusal_on_the_phone_is_final_and_tells_the_user_someone_has_the_password() {
    let app = spawn_app().await;
    let (mut phone, mut key) = paired_phone_with_key(&app).await;
    let mut intruder = Browser::new(&app);
    intruder.sign_in_as_user().await;
    assert_eq!(intruder.post("/api/account/sign-in/phone", None).await.status, 202);
    let id = waiting_id(&mut phone).await;
    let denied = phone.post(&format!("/device/api/confirmations/{id}/deny"), None).await;
    assert_eq!(denied.body["state"], "denied", "{:?}", denied.body);
    let told = app.sent.last_body().unwrap();
    assert!(told.contains("your paired phone refused a sign-in to your account") && told.contains("change it"), "{told}");

    let refused = intruder.post("/api/account/sign-in/phone/finish", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "phone_confirmation_denied"));
    // Final: the phone cannot allow it afterwards.
    let late = phone.post(&format!("/device/api/confirmations/{id}/start"), None).await;
    assert_eq!(late.status, 404);
    // Asking again at once is refused (no push fatigue), after 30 s it goes.
    let soon = intruder.post("/api/account/sign-in/phone", None).await;
    assert_eq!((soon.status.as_u16(), soon.code()), (429, "phone_confirmation_too_soon"));
    assert!(soon.headers.get("retry-after").is_some());
    app.clock.advance_millis(30_000);
    assert_eq!(intruder.post("/api/account/sign-in/phone", None).await.status, 202);
    assert!(allow_on_phone(&mut phone, &mut key).await.status == 200);
}

#[tokio::test]
async fn a_confirmation_runs_out_in_two_minutes_and_a_new_request_supersedes_the_waiting_one() {
    let app = spawn_app().await;
    let (mut phone, mut key) = paired_phone_with_key(&app).await;
    let mut laptop = Browser::new(&app);
    laptop.sign_in_as_user().await;
    assert_eq!(laptop.post("/api/account/sign-in/phone", None).await.status, 202);
    let first = waiting_id(&mut phone).await;
    let started = assertion(&mut phone, &mut key, &first).await;
    app.clock.advance_millis(30_000);
    assert_eq!(laptop.post("/api/account/sign-in/phone", None).await.status, 202);
    let second = waiting_id(&mut phone).await;
    assert_ne!(first, second, "one waits at a time");
    let stale = phone.post(&format!("/device/api/confirmations/{first}/finish"), Some(started)).await;
    assert_eq!(stale.status.as_u16(), 409, "the superseded one's ceremony is gone: {:?}", stale.body);

    app.clock.advance_millis(120_000);
    assert!(phone.get("/device/api/confirmations").await.body.as_array().unwrap().is_empty(), "ran out");
    assert_eq!(laptop.get("/api/account/sign-in/phone").await.body["state"], "canceled");
    let late = phone.post(&format!("/device/api/confirmations/{second}/start"), None).await;
    assert_eq!(late.status, 404);
    let missing = laptop.post("/api/account/sign-in/phone/finish", None).await;
    assert_eq!((missing.status.as_u16(), missing.code()), (409, "phone_confirmation_missing"));
}

#[tokio::test]
async fn only_the_users_own_phone_confirms_and_only_while_paired() {
    let app = spawn_app().await;
    let (mut phone, mut key) = paired_phone_with_key(&app).await;
    let mut admins_phone = Browser::new(&app);
    admins_phone.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    assert_eq!(prove_phone(&mut admins_phone, &app).await.body["done"], true);
    let mut admins_key = soft_passkey();
    assert_eq!(make_phone_passkey(&mut admins_phone, &mut admins_key).await.status, 201);

    let mut laptop = Browser::new(&app);
    laptop.sign_in_as_user().await;
    assert_eq!(laptop.post("/api/account/sign-in/phone", None).await.status, 202);
    let id = waiting_id(&mut phone).await;
    assert!(admins_phone.get("/device/api/confirmations").await.body.as_array().unwrap().is_empty());
    for path in ["start", "deny"] {
        let refused = admins_phone.post(&format!("/device/api/confirmations/{id}/{path}"), None).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (404, "not_found"), "{path}");
    }
    // Started on the phone, then the phone unpaired: nothing more.
    let answer = assertion(&mut phone, &mut key, &id).await;
    assert_eq!(phone.request(Method::DELETE, "/api/account/phone", None, &[]).await.status, 204);
    let refused = phone.post(&format!("/device/api/confirmations/{id}/finish"), Some(answer)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (401, "phone_not_paired"));
    assert_eq!(laptop.get("/api/account/sign-in/phone").await.body["state"], "waiting");
    // No phone: nothing to ask (and no second factor left to ask for).
    let none = laptop.post("/api/account/sign-in/phone", None).await;
    assert_eq!((none.status.as_u16(), none.code()), (409, "no_paired_phone"));
}

#[tokio::test]
async fn a_new_phone_takes_the_place_of_the_paired_one_only_once_that_one_allows_it() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    let (mut old, mut old_key) = paired_phone_with_key(&app).await;
    let mut new = Browser::new(&app);
    sign_in_confirmed(&mut new, &mut old, &mut old_key).await;
    // Binding a factor: the step-up first, for the replacement too.
    let early = new.post("/api/account/phone/replace", None).await;
    assert_eq!((early.status.as_u16(), early.code()), (403, "step_up_required"));
    assert_eq!(prove_phone(&mut new, &app).await.body["done"], true);
    let refused = new.post("/api/account/phone/start", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (409, "phone_already_paired"), "not without the old phone");
    app.clock.advance_millis(30_000);
    assert_eq!(new.post("/api/account/phone/replace", None).await.status, 202);
    assert_eq!(old.get("/device/api/confirmations").await.body[0]["purpose"], "replace_phone");
    assert_eq!(new.post("/api/account/phone/start", None).await.status, 409, "still waiting on the old phone");
    assert_eq!(allow_on_phone(&mut old, &mut old_key).await.status, 200);
    assert_eq!(new.get("/api/account/phone/replace").await.body["state"], "allowed");

    // The old phone's pending approval, started before the replacement,
    // cannot finish after it.
    let token = app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("10.00"))).await.body["sca_session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let approval = app.session_id(&token).await;
    let start = old.post(&format!("/device/api/approvals/{approval}/start"), None).await;
    let answer =
        serde_json::to_value(old_key.do_authentication(Url::parse(ORIGIN).unwrap(), serde_json::from_value(start.body).unwrap()).unwrap())
            .unwrap();

    let paired = make_phone_passkey(&mut new, &mut soft_passkey()).await;
    assert_eq!(paired.status, 201, "{:?}", paired.body);
    assert_eq!(new.get("/device/api/phone").await.status, 200);
    let ended = old.get("/device/api/phone").await;
    assert_eq!((ended.status.as_u16(), ended.code()), (401, "phone_not_paired"), "the old phone's credential ended");
    let late = old.post(&format!("/device/api/approvals/{approval}/finish"), Some(answer)).await;
    assert_eq!(late.status, 401);
    assert_eq!(app.poll(&token).await.body["result"], "waiting");
    let events = app.audit_of_user(&user_id, 30).await;
    let removed = events.iter().find(|e| e.kind == "factor.removed").unwrap();
    assert_eq!((removed.detail["by"].as_str(), removed.detail["replaced"].as_bool()), (Some("phone"), Some(true)));
    // Used once: no second replacement on the same confirmation.
    assert_eq!(new.get("/api/account/phone/replace").await.body["state"], "used");
}

#[tokio::test]
async fn a_replacement_racing_the_old_phones_approval_never_lets_it_approve_after_its_end() {
    let app = spawn_app().await;
    let user_id = app.user_id().await;
    let (mut old, mut old_key) = paired_phone_with_key(&app).await;
    let mut new = Browser::new(&app);
    sign_in_confirmed(&mut new, &mut old, &mut old_key).await;
    assert_eq!(prove_phone(&mut new, &app).await.body["done"], true);
    app.clock.advance_millis(30_000);
    assert_eq!(new.post("/api/account/phone/replace", None).await.status, 202);
    assert_eq!(allow_on_phone(&mut old, &mut old_key).await.status, 200);
    let token = app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("10.00"))).await.body["sca_session_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let approval = app.session_id(&token).await;
    let start = old.post(&format!("/device/api/approvals/{approval}/start"), None).await;
    let options = serde_json::from_value(start.body).unwrap();
    let answer = serde_json::to_value(old_key.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap();

    // The new phone's registration is made first, then both finishes race.
    let start = new.post("/api/account/phone/start", None).await;
    let mut options = start.body.clone();
    options["publicKey"]["authenticatorSelection"] =
        serde_json::json!({"residentKey": "discouraged", "requireResidentKey": false, "userVerification": "required"});
    let registered = serde_json::to_value(
        soft_passkey().do_registration(Url::parse(ORIGIN).unwrap(), serde_json::from_value(options).unwrap()).unwrap(),
    )
    .unwrap();
    let approve_path = format!("/device/api/approvals/{approval}/finish");
    let (approved, paired) = tokio::join!(old.post(&approve_path, Some(answer)), new.post("/api/account/phone/finish", Some(registered)));
    assert_eq!(paired.status, 201, "the replacement goes through: {:?}", paired.body);
    let events = app.audit_of_user(&user_id, 50).await;
    let position = |kind: &str| events.iter().position(|e| e.kind == kind && (kind != "factor.removed" || e.detail["replaced"] == true));
    match approved.status.as_u16() {
        // Approved first: its decision is older than the old phone's end
        // (the list is newest first).
        200 => {
            assert_eq!(app.poll(&token).await.body["result"], "allow");
            assert!(position("factor.removed") < position("session.decided"), "{events:?}");
        }
        // Ended first: refused, and the session still waits.
        _ => {
            assert!([400, 401].contains(&approved.status.as_u16()), "{} {:?}", approved.status, approved.body);
            assert_eq!(app.poll(&token).await.body["result"], "waiting");
            assert_eq!(position("session.decided"), None);
        }
    }
}
