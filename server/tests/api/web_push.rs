//! Web Push to the paired phone (issue 26): the phone subscribes with the
//! server's VAPID key; a partner's action without a preference header
//! then reaches the (mock) push service as a valid, decryptable push that
//! carries the approval's id only, delivered once however many instances
//! send; the subscription is validated, and one the push service calls
//! gone turns the phone's notifications off in the account area.

use std::sync::Arc;

use axum::http::Method;
use futures::future::join_all;
use passgate::config::{Config, Mode, WebPushSettings};
use passgate::delivery::Courier as _;
use passgate::notify::webpush::{PushHosts, PushSubscription, VapidKey, VapidSubject, WebPush};
use passgate::outbound::mock_push::MockPush;
use passgate::outbound::{ClientOptions, HttpsClient};
use passgate::push_delivery::{Sender, PUSH_TTL};
use passgate::store::Store;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, transfer_body, Browser, TestApp};
use crate::pairing::paired_phone;

/// A VAPID key made by `passgate vapid-keys` for these tests only.
const VAPID_PRIVATE_KEY: &str = "ASyXKTsbm_i5ibWn02-ePCLo8oFCuEHwkVqXXDupn8k";

fn settings() -> WebPushSettings {
    WebPushSettings {
        key: VapidKey::from_base64url(VAPID_PRIVATE_KEY).unwrap(),
        subject: VapidSubject::parse("mailto:ops@bank.example").unwrap(),
        // The mock push service listens on loopback.
        hosts: PushHosts::parse("127.0.0.1").unwrap(),
    }
}

fn with_web_push(config: &mut Config) {
    config.web_push = Some(settings());
}

/// One instance's push sender on `store` (what `passgate serve` spawns).
fn sender(app: &TestApp, store: &Store) -> Sender {
    let settings = settings();
    let client = HttpsClient::new(&ClientOptions::default()).unwrap();
    let web_push = WebPush::new(client, settings.key, settings.subject, PUSH_TTL);
    Sender::new(store.clone(), Arc::new(app.clock.clone()), Arc::new(web_push)).unwrap()
}

fn subscription_json(subscription: &PushSubscription) -> Value {
    json!({
        "endpoint": subscription.endpoint().as_str(),
        "expirationTime": null,
        "keys": {"p256dh": subscription.p256dh(), "auth": subscription.auth()},
    })
}

/// The phone reads the key, subscribes at the mock push service, and
/// posts its subscription.
async fn subscribe(phone: &mut Browser<'_>) -> (MockPush, PushSubscription) {
    let key = phone.get("/device/api/push_key").await;
    assert_eq!(key.status, 200, "{:?}", key.body);
    let key = key.body["application_server_key"].as_str().unwrap().to_owned();
    assert_eq!(key, settings().key.public_base64url());
    let mock = MockPush::start(&key).await;
    let subscription = mock.subscribe();
    let put = phone.request(Method::PUT, "/device/api/push_subscription", Some(subscription_json(&subscription)), &[]).await;
    assert_eq!(put.status, 204, "{:?}", put.body);
    (mock, subscription)
}

#[tokio::test]
async fn a_partners_request_reaches_the_phone_as_one_web_push_across_two_instances() {
    let app = spawn_app_with(Mode::Sandbox, with_web_push).await;
    let mut phone = paired_phone(&app).await;
    let (mock, subscription) = subscribe(&mut phone).await;
    assert_eq!(phone.get("/device/api/phone").await.body["notifications"], true);

    let challenged = app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("42.00"))).await;
    assert_eq!(challenged.status, 428, "{:?}", challenged.body);
    let session_id = app.session_id(challenged.body["sca_session_token"].as_str().unwrap()).await;

    // Two instances, each with its own connections and its sender task,
    // race for the push: it is sent once.
    let other = app.restart().await;
    let senders = [sender(&app, &app.store), sender(&app, &other.store), sender(&app, &other.store)];
    let rounds = senders.into_iter().map(|s| tokio::spawn(async move { while s.send_due().await.unwrap() > 0 {} }));
    join_all(rounds).await.into_iter().for_each(Result::unwrap);

    let delivered = mock.delivered();
    assert_eq!(delivered.len(), 1, "once; refused: {:?}", mock.refusals());
    assert_eq!(delivered[0].0, subscription);
    let payload: Value = serde_json::from_slice(&delivered[0].1).unwrap();
    assert_eq!(payload, json!({"approval": session_id}), "the opaque id, nothing else");
    // The phone reads the rest over its device credential.
    let shown = phone.get(&format!("/device/api/approvals/{session_id}")).await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
    assert_eq!(shown.body["action"]["amount"], "42.00", "{:?}", shown.body);
}

#[tokio::test]
async fn a_subscription_the_push_service_calls_gone_turns_notifications_off() {
    let app = spawn_app_with(Mode::Sandbox, with_web_push).await;
    let mut phone = paired_phone(&app).await;
    let (mock, subscription) = subscribe(&mut phone).await;
    // The phone's browser is signed in to the account area too.
    assert_eq!(phone.get("/api/account/phone").await.body["notifications"], true);

    mock.forget(&subscription);
    assert_eq!(app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("42.00"))).await.status, 428);
    assert_eq!(sender(&app, &app.store).send_due().await.unwrap(), 1);
    assert!(mock.delivered().is_empty());
    assert_eq!(phone.get("/api/account/phone").await.body["notifications"], false, "the account area shows it off");
    assert_eq!(phone.get("/device/api/phone").await.body["notifications"], false);

    // Subscribing again turns them back on; the phone may also turn them off.
    let renewed = mock.subscribe();
    let put = phone.request(Method::PUT, "/device/api/push_subscription", Some(subscription_json(&renewed)), &[]).await;
    assert_eq!(put.status, 204);
    assert_eq!(phone.get("/api/account/phone").await.body["notifications"], true);
    assert_eq!(phone.request(Method::DELETE, "/device/api/push_subscription", None, &[]).await.status, 204);
    assert_eq!(phone.get("/api/account/phone").await.body["notifications"], false);
}

#[tokio::test]
async fn a_subscription_is_refused_unless_it_names_a_listed_push_service_with_valid_keys() {
    let app = spawn_app_with(Mode::Sandbox, with_web_push).await;
    let mut phone = paired_phone(&app).await;
    let (_mock, subscription) = subscribe(&mut phone).await;
    let valid = subscription_json(&subscription);
    let refused = |body: Value| {
        let mut copy = valid.clone();
        json_patch(&mut copy, body);
        copy
    };
    for (body, field) in [
        // Not on PASSGATE_PUSH_HOSTS: Passgate would POST into the bank's network.
        (refused(json!({"endpoint": "https://10.0.0.5/admin"})), "endpoint"),
        (refused(json!({"endpoint": "http://example.com/push"})), "endpoint"),
        (refused(json!({"keys": {"p256dh": "BAAA", "auth": subscription.auth()}})), "keys.p256dh"),
        (refused(json!({"keys": {"p256dh": subscription.p256dh(), "auth": "c2hvcnQ"}})), "keys.auth"),
    ] {
        let reply = phone.request(Method::PUT, "/device/api/push_subscription", Some(body.clone()), &[]).await;
        assert_eq!((reply.status.as_u16(), reply.code(), reply.body["field"].as_str()), (422, "validation_failed", Some(field)), "{body}");
    }
    let shapeless = phone.request(Method::PUT, "/device/api/push_subscription", Some(json!({"endpoint": 1})), &[]).await;
    assert_eq!((shapeless.status.as_u16(), shapeless.code()), (422, "validation_failed"), "{:?}", shapeless.body);
    // Only a paired phone subscribes.
    let mut stranger = Browser::new(&app);
    let reply = stranger.request(Method::PUT, "/device/api/push_subscription", Some(valid), &[]).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (401, "phone_not_paired"));
}

#[tokio::test]
async fn without_vapid_settings_a_phone_is_told_there_are_no_notifications() {
    let app = spawn_app().await;
    let mut phone = paired_phone(&app).await;
    let key = phone.get("/device/api/push_key").await;
    assert_eq!((key.status.as_u16(), key.code()), (404, "not_found"), "{:?}", key.body);
    let subscription = MockPush::start(&settings().key.public_base64url()).await.subscribe();
    let put = phone.request(Method::PUT, "/device/api/push_subscription", Some(subscription_json(&subscription)), &[]).await;
    assert_eq!((put.status.as_u16(), put.code()), (404, "not_found"));
    assert_eq!(phone.get("/device/api/phone").await.body["notifications"], false);
}

/// Overwrites `target`'s top-level fields with `patch`'s.
fn json_patch(target: &mut Value, patch: Value) {
    for (name, value) in patch.as_object().unwrap() {
        target[name] = value.clone();
    }
}
