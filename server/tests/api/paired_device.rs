//! `paired-device`, the default method (issue 24, seed 002): an action of
//! a user with a paired phone opens the session and pushes it to the phone
//! (the push outbox names the session, and nothing else); without a
//! phone, `428 sca_not_enrolled`. At most one approval waits on a phone:
//! a new action supersedes it (its poll reads `deny` with `canceled_at`)
//! or, per the setting, is refused with `429 push_pending`. The phone,
//! by its device credential, reads its user's waiting approvals only and
//! decides them: approving takes its passkey's assertion (evidence kept
//! as for a passkey), denying is final, "this wasn't me" also reports.

use axum::http::Method;
use passgate::audit::report::{self, Check};
use passgate::clock::Clock;
use serde_json::{json, Value};
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

use crate::helpers::{spawn_app, spawn_app_with, transfer_body, Browser, Reply, TestApp, ORIGIN};
use crate::pairing::{paired_phone, paired_phone_with_key};

/// A transfer without `X-Qonto-2fa-Preference`: `paired-device`.
async fn transfer_by_default(app: &TestApp, amount: &str) -> Reply {
    app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body(amount))).await
}

async fn pushes(app: &TestApp) -> Vec<Value> {
    let mut dev = Browser::new(app);
    let outbox = dev.get("/dev/push").await;
    assert_eq!(outbox.status, 200, "{:?}", outbox.body);
    outbox.body.as_array().unwrap().clone()
}

#[tokio::test]
async fn without_a_preference_a_paired_users_action_is_pushed_to_the_phone() {
    let app = spawn_app().await;
    let _phone = paired_phone(&app).await;
    let sms_before = app.sent.count();
    let challenged = transfer_by_default(&app, "42.00").await;
    assert_eq!(challenged.status, 428, "{:?}", challenged.body);
    assert_eq!(
        (challenged.code(), challenged.body["message"].as_str(), challenged.body["action_type"].as_str()),
        ("sca_required", Some("SCA required"), Some("transfer.single.create"))
    );
    let token = challenged.body["sca_session_token"].as_str().unwrap();
    let session_id = app.session_id(token).await;
    let pushed = pushes(&app).await;
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0]["session_id"], session_id.as_str());
    let phone = app.store.paired_phone_of_user(&app.user_id().await).await.unwrap().unwrap();
    assert_eq!(pushed[0]["phone_id"], phone.id.as_str());
    assert_eq!(app.sent.count(), sms_before, "a push, no SMS");
    assert_eq!(app.poll(token).await.body["result"], "waiting");

    // The explicit header does the same.
    let explicit = app.transfer(&transfer_body("43.00"), "paired-device", None).await;
    assert_eq!(explicit.code(), "sca_required");
    assert_eq!(pushes(&app).await.len(), 2);
}

#[tokio::test]
async fn without_a_paired_phone_the_default_method_is_not_enrolled_and_nothing_is_pushed() {
    let app = spawn_app().await;
    let refused = transfer_by_default(&app, "42.00").await;
    assert_eq!((refused.status.as_u16(), refused.code()), (428, "sca_not_enrolled"), "{:?}", refused.body);
    assert!(refused.body.get("sca_session_token").is_none());
    assert!(pushes(&app).await.is_empty());

    // Paired, then unpaired: not enrolled again.
    let mut phone = paired_phone(&app).await;
    assert_eq!(phone.request(Method::DELETE, "/device/api/phone", None, &[]).await.status, 204);
    assert_eq!(transfer_by_default(&app, "42.00").await.code(), "sca_not_enrolled");
    assert!(pushes(&app).await.is_empty());
}

#[tokio::test]
async fn a_new_action_supersedes_the_approval_waiting_on_the_phone() {
    let app = spawn_app().await;
    let _phone = paired_phone(&app).await;
    let first = transfer_by_default(&app, "10.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    app.clock.advance_millis(5_000);
    let superseded_at = app.clock.now().to_rfc3339();
    let second = transfer_by_default(&app, "20.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    let polled = app.poll(&first).await;
    assert_eq!((polled.body["result"].as_str(), polled.body["canceled_at"].as_str()), (Some("deny"), Some(superseded_at.as_str())));
    assert_eq!(app.poll(&second).await.body["result"], "waiting");
    let replay =
        app.call(Method::POST, "/v2/sepa/transfers", &[("x-qonto-sca-session-token", &first)], Some(&transfer_body("10.00"))).await;
    assert_eq!((replay.status.as_u16(), replay.code()), (412, "sca_session_denied"));
    assert_eq!(pushes(&app).await.len(), 2);
}

#[tokio::test]
async fn per_the_setting_a_new_action_is_refused_while_one_waits_on_the_phone() {
    let app = spawn_app_with(passgate::config::Mode::Sandbox, |config| {
        config.limits.pending_push = passgate::store::PendingPush::Refuse;
    })
    .await;
    let _phone = paired_phone(&app).await;
    let first = transfer_by_default(&app, "10.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    app.clock.advance_millis(60_000);
    let refused = transfer_by_default(&app, "20.00").await;
    assert_eq!((refused.status.as_u16(), refused.code()), (429, "push_pending"), "{:?}", refused.body);
    assert_eq!(refused.headers["retry-after"], "840", "until the waiting one runs out");
    assert_eq!(app.poll(&first).await.body["result"], "waiting", "the waiting one is untouched");
    assert_eq!(pushes(&app).await.len(), 1, "nothing pushed on a refusal");
    // Other methods are not held back.
    assert_eq!(app.transfer(&transfer_body("20.00"), "mock", None).await.code(), "sca_required");

    app.clock.advance_millis(14 * 60_000);
    assert_eq!(transfer_by_default(&app, "20.00").await.code(), "sca_required", "the waiting one ran out");
}

/// The phone's assertion over the challenge of `id`'s approval.
async fn phone_assertion(phone: &mut Browser<'_>, authenticator: &mut SoftPasskey, id: &str) -> Value {
    let start = phone.post(&format!("/device/api/approvals/{id}/start"), None).await;
    assert_eq!(start.status, 200, "{:?}", start.body);
    assert_eq!(start.body["publicKey"]["userVerification"], "required");
    let options = serde_json::from_value(start.body).unwrap();
    serde_json::to_value(authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap()
}

#[tokio::test]
async fn a_request_without_a_preference_is_approved_on_the_paired_phone_and_replayed_once() {
    let app = spawn_app().await;
    let (mut phone, mut authenticator) = paired_phone_with_key(&app).await;
    let body = transfer_body("1200.00");
    let token = app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&body)).await.body["sca_session_token"].as_str().unwrap().to_owned();
    let id = app.session_id(&token).await;

    let listed = phone.get("/device/api/approvals").await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let shown = phone.get(&format!("/device/api/approvals/{id}")).await;
    assert_eq!(shown.body, listed.body[0]);
    assert_eq!((shown.body["id"].as_str(), shown.body["partner_name"].as_str()), (Some(id.as_str()), Some("Demo Accounting App")));
    let action = &shown.body["action"];
    assert_eq!(
        (action["amount"].as_str(), action["payee_name"].as_str(), action["iban"].as_str(), action["reference"].as_str()),
        (Some("1,200.00"), Some("ACME SAS"), Some("FR76 3000 6000 0112 3456 7890 189"), Some("INV-42"))
    );
    assert_eq!(shown.body["seconds_left"], 900);

    let answer = phone_assertion(&mut phone, &mut authenticator, &id).await;
    let allowed = phone.post(&format!("/device/api/approvals/{id}/finish"), Some(answer)).await;
    assert_eq!(allowed.body, json!({"state": "allowed"}), "{:?}", allowed.body);
    assert_eq!(app.poll(&token).await.body["result"], "allow");
    let replay = app.call(Method::POST, "/v2/sepa/transfers", &[("x-qonto-sca-session-token", &token)], Some(&body)).await;
    assert_eq!(replay.status, 201, "{:?}", replay.body);
    let again = app.call(Method::POST, "/v2/sepa/transfers", &[("x-qonto-sca-session-token", &token)], Some(&body)).await;
    assert_eq!(again.code(), "sca_session_consumed");

    // Kept and provable as a passkey's approval, against the phone's key.
    let key = passgate::audit::evidence::EvidenceKey::new(
        &crate::helpers::config("sqlite://unused", passgate::config::Mode::Sandbox).secrets_key,
    );
    let kept = report::report(&app.store, &id, &key).await.unwrap();
    assert!(kept.holds() && matches!(&kept.verification, Check::Verified(v) if v.holds), "{kept:?}");
    assert_eq!(kept.audit[1].detail["by"]["method"], "paired-device");
    assert!(phone.get("/device/api/approvals").await.body.as_array().unwrap().is_empty(), "decided: no longer listed");
    assert_eq!(phone.get(&format!("/device/api/approvals/{id}")).await.status, 404, "nor readable");
    let used = app.store.paired_phone_of_user(&app.user_id().await).await.unwrap().unwrap();
    assert!(used.last_used_at.is_some());
}

#[tokio::test]
async fn the_phone_reads_and_decides_only_its_users_waiting_approvals() {
    let app = spawn_app().await;
    let (mut phone, mut authenticator) = paired_phone_with_key(&app).await;
    let token = transfer_by_default(&app, "10.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    let id = app.session_id(&token).await;
    // Another user's phone (the admin's) knows nothing of it.
    let mut admin_phone = Browser::new(&app);
    admin_phone.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    assert_eq!(admin_phone.post("/api/account/step-up/sms?for=pair_phone", None).await.status, 204);
    let code = app.sent.last_code().unwrap();
    assert_eq!(admin_phone.post("/api/account/step-up?for=pair_phone", Some(json!({"code": code}))).await.body["done"], true);
    let start = admin_phone.post("/api/account/phone/start", None).await;
    let mut options = start.body.clone();
    options["publicKey"]["authenticatorSelection"] =
        json!({"residentKey": "discouraged", "requireResidentKey": false, "userVerification": "required"});
    let mut admin_key = crate::helpers::soft_passkey();
    let registered = admin_key.do_registration(Url::parse(ORIGIN).unwrap(), serde_json::from_value(options).unwrap()).unwrap();
    assert_eq!(admin_phone.post("/api/account/phone/finish", Some(serde_json::to_value(registered).unwrap())).await.status, 201);
    assert!(admin_phone.get("/device/api/approvals").await.body.as_array().unwrap().is_empty());
    for path in ["", "/start", "/deny", "/report"] {
        let method = if path.is_empty() { Method::GET } else { Method::POST };
        let refused = admin_phone.request(method, &format!("/device/api/approvals/{id}{path}"), None, &[]).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (404, "not_found"), "{path}");
    }
    // Not a paired-device session, or unknown: unknown too.
    let link_token = app.start_transfer(&transfer_body("11.00"), "passkey").await;
    let passkey_session = app.session_id(&link_token).await;
    assert_eq!(phone.get(&format!("/device/api/approvals/{passkey_session}")).await.status, 404);
    assert_eq!(phone.get("/device/api/approvals/nothing-here").await.status, 404);
    // A ceremony started on the phone, then the phone unpaired: nothing more.
    let answer = phone_assertion(&mut phone, &mut authenticator, &id).await;
    // Unpaired from the account area (the phone's browser is signed in).
    assert_eq!(phone.request(Method::DELETE, "/api/account/phone", None, &[]).await.status, 204);
    let refused = phone.post(&format!("/device/api/approvals/{id}/finish"), Some(answer)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (401, "phone_not_paired"));
    assert_eq!(app.poll(&token).await.body["result"], "waiting");
}

#[tokio::test]
async fn a_denial_on_the_phone_is_final_and_this_wasnt_me_reports_it() {
    let app = spawn_app().await;
    let (mut phone, mut authenticator) = paired_phone_with_key(&app).await;
    let first = transfer_by_default(&app, "10.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    let first_id = app.session_id(&first).await;
    let denied = phone.post(&format!("/device/api/approvals/{first_id}/deny"), None).await;
    assert_eq!(denied.body, json!({"state": "denied"}));
    assert_eq!(app.poll(&first).await.body["result"], "deny");
    let start = phone.post(&format!("/device/api/approvals/{first_id}/start"), None).await;
    assert_eq!(start.status, 404, "a denial is final");
    let _ = &mut authenticator;

    let second = transfer_by_default(&app, "20.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    let second_id = app.session_id(&second).await;
    let reported = phone.post(&format!("/device/api/approvals/{second_id}/report"), None).await;
    assert_eq!(reported.body, json!({"state": "denied"}), "{:?}", reported.body);
    assert_eq!(app.poll(&second).await.body["result"], "deny");
    let told = app.sent.last_body().unwrap();
    assert!(told.contains("you reported a request from Demo Accounting App as not yours"), "{told}");
    let user_id = app.user_id().await;
    let events = app.audit_of_user(&user_id, 20).await;
    assert!(events.iter().any(|e| e.kind == "session.reported" && e.session_id.as_deref() == Some(second_id.as_str())), "{events:?}");
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    let company = admin.get("/api/account/activity?scope=company&category=session").await;
    assert!(company.body["events"].as_array().unwrap().iter().any(|e| e["kind"] == "session.reported"), "{:?}", company.body);
}

#[tokio::test]
async fn two_finishes_of_one_approval_allow_it_once() {
    let app = spawn_app().await;
    let (mut phone, mut authenticator) = paired_phone_with_key(&app).await;
    let token = transfer_by_default(&app, "10.00").await.body["sca_session_token"].as_str().unwrap().to_owned();
    let id = app.session_id(&token).await;
    let answer = phone_assertion(&mut phone, &mut authenticator, &id).await;
    let (cookie, credential, csrf) = (phone.cookie.clone(), phone.phone.clone(), phone.csrf.clone());
    let mut twin = Browser::new(&app);
    (twin.cookie, twin.phone, twin.csrf) = (cookie, credential, csrf);
    let path = format!("/device/api/approvals/{id}/finish");
    let (one, two) = tokio::join!(phone.post(&path, Some(answer.clone())), twin.post(&path, Some(answer)));
    let (won, lost) = if one.status == 200 { (one, two) } else { (two, one) };
    assert_eq!(won.status, 200, "{:?}", won.body);
    // The loser finds the ceremony taken (409) or, once the winner's
    // decision is written, nothing left pending for this phone (404).
    assert!([404, 409].contains(&lost.status.as_u16()), "{} {:?}", lost.status, lost.body);
    assert_eq!(app.poll(&token).await.body["result"], "allow");
    let kept = app.store.audit_of_session(&id).await.unwrap();
    assert_eq!(kept.iter().filter(|e| e.kind == "session.decided").count(), 1);
}
