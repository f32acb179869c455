//! `paired-device`, the default method (issue 24, seed 002): an action of
//! a user with a paired phone opens the session and pushes it to the phone
//! (the push outbox names the session, and nothing else); without a
//! phone, `428 sca_not_enrolled`. At most one approval waits on a phone:
//! a new action supersedes it (its poll reads `deny` with `canceled_at`)
//! or, per the setting, is refused with `429 push_pending`.

use axum::http::Method;
use passgate::clock::Clock;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with, transfer_body, Browser, Reply, TestApp};
use crate::pairing::paired_phone;

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
