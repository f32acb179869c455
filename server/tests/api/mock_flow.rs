use axum::http::Method;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_in, transfer_body};
use passgate::config::Mode;

#[tokio::test]
async fn the_mock_flow_runs_the_transfer_once_after_allow() {
    let app = spawn_app().await;
    let body = transfer_body("1200.00");

    let first = app.transfer(&body, "mock", None).await;
    assert_eq!(first.status, 428);
    assert_eq!(first.body["code"], "sca_required");
    assert_eq!(first.body["message"], "SCA required");
    assert_eq!(first.body["action_type"], "transfer.single.create");
    let token = first.body["sca_session_token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 43, "256 bits in base64url");

    let waiting = app.poll(&token).await;
    assert_eq!(waiting.body, json!({"result": "waiting", "canceled_at": null}));

    let allow = app.mock_decide(&token, "allow").await;
    assert_eq!((allow.status.as_u16(), allow.body.clone()), (200, json!({"message": "Success"})));
    app.clock.advance_millis(1_000);
    let mocked = app.call(Method::GET, &format!("/v2/mocked_sca_sessions/{token}"), &[], None).await;
    assert_eq!(mocked.body["result"], "allow");

    let replay = app.transfer(&body, "mock", Some(&token)).await;
    assert_eq!(replay.status, 201, "{:?}", replay.body);
    assert_eq!(replay.body["transfer"]["status"], "settled");
    assert_eq!(replay.body["transfer"]["amount"], "1200.00");

    let again = app.transfer(&body, "mock", Some(&token)).await;
    assert_eq!((again.status.as_u16(), again.code()), (412, "sca_session_consumed"));

    let list = app.call(Method::GET, "/v2/sepa/transfers", &[], None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["transfers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_denied_mock_session_polls_deny_and_refuses_the_replay() {
    let app = spawn_app().await;
    let body = transfer_body("10.00");
    let token = app.start_transfer(&body, "mock").await;
    assert_eq!(app.mock_decide(&token, "deny").await.status, 200);

    let polled = app.poll(&token).await;
    assert_eq!(polled.body["result"], "deny");
    assert!(polled.body["canceled_at"].is_string());

    let replay = app.transfer(&body, "mock", Some(&token)).await;
    assert_eq!((replay.status.as_u16(), replay.code()), (412, "sca_session_denied"));
    // A decided session cannot be decided again.
    let again = app.mock_decide(&token, "allow").await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "approval_closed"));
}

#[tokio::test]
async fn a_beneficiary_needs_sca_too() {
    let app = spawn_app().await;
    let body = json!({"beneficiary": {"name": "Supplier SARL", "iban": "DE89370400440532013000"}}).to_string();
    let first = app.call(Method::POST, "/v2/sepa/beneficiaries", &[("x-qonto-2fa-preference", "mock")], Some(&body)).await;
    assert_eq!((first.status.as_u16(), first.code()), (428, "sca_required"));
    assert_eq!(first.body["action_type"], "beneficiary.create");
    let token = first.body["sca_session_token"].as_str().unwrap().to_owned();
    app.mock_decide(&token, "allow").await;
    let replay = app
        .call(
            Method::POST,
            "/v2/sepa/beneficiaries",
            &[("x-qonto-2fa-preference", "mock"), ("x-qonto-sca-session-token", &token)],
            Some(&body),
        )
        .await;
    assert_eq!(replay.status, 201, "{:?}", replay.body);
    assert_eq!(replay.body["beneficiary"]["iban"], "DE89370400440532013000");
}

#[tokio::test]
async fn paired_device_is_the_default_and_answers_not_enrolled() {
    let app = spawn_app().await;
    let reply = app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("5.00"))).await;
    assert_eq!(reply.status, 428);
    assert_eq!(reply.code(), "sca_not_enrolled");
    assert!(reply.body.get("sca_session_token").is_none());
}

#[tokio::test]
async fn sms_otp_is_forbidden_to_plain_partners() {
    let app = spawn_app().await;
    let reply = app.transfer(&transfer_body("5.00"), "sms-otp", None).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (403, "forbidden"));
}

#[tokio::test]
async fn an_unknown_preference_is_a_400() {
    let app = spawn_app().await;
    let reply = app.transfer(&transfer_body("5.00"), "carrier-pigeon", None).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (400, "invalid_2fa_preference"));
}

#[tokio::test]
async fn production_has_no_mock_method_no_mocked_sessions_and_no_outbox() {
    let app = spawn_app_in(Mode::Production).await;
    let body = transfer_body("5.00");
    let mock = app.transfer(&body, "mock", None).await;
    assert_eq!((mock.status.as_u16(), mock.code()), (400, "invalid_2fa_preference"));
    let token = app.start_transfer(&body, "passkey").await;
    let decided = app.mock_decide(&token, "allow").await;
    assert_eq!((decided.status.as_u16(), decided.code()), (404, "not_found"));
    let polled = app.call(Method::GET, &format!("/v2/mocked_sca_sessions/{token}"), &[], None).await;
    assert_eq!((polled.status.as_u16(), polled.code()), (404, "not_found"));
    let outbox = app.call(Method::GET, "/dev/sms", &[], None).await;
    assert_eq!((outbox.status.as_u16(), outbox.code()), (404, "not_found"));
    assert_eq!(app.poll(&token).await.body["result"], "waiting");
}

#[tokio::test]
async fn the_sandbox_clock_moves_forward_on_request_to_show_expiry() {
    let app = spawn_app().await;
    let config = crate::helpers::config("sqlite://unused", Mode::Sandbox);
    let state = passgate::AppState::sandbox_with_clock(
        config,
        app.store.clone(),
        std::sync::Arc::default(),
        std::sync::Arc::new(passgate::notify::sms::SandboxOutbox),
    )
    .unwrap();
    let router = passgate::app(state);
    let call = |method: Method, path: String, headers: Vec<(&'static str, &'static str)>, body: Option<String>| {
        let mut request =
            axum::http::Request::builder().method(method).uri(path).header("authorization", format!("Bearer {}", app.token()));
        for (k, v) in headers {
            request = request.header(k, v);
        }
        let request = request.body(axum::body::Body::from(body.unwrap_or_default())).unwrap();
        let router = router.clone();
        async move {
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
        }
    };
    let json = vec![("content-type", "application/json"), ("x-qonto-2fa-preference", "mock")];
    let (status, body) = call(Method::POST, "/v2/sepa/transfers".into(), json.clone(), Some(transfer_body("1.00"))).await;
    assert_eq!((status, body["code"].as_str()), (428, Some("sca_required")));
    let token = body["sca_session_token"].as_str().unwrap().to_owned();
    let advance =
        |seconds: i64| call(Method::POST, "/dev/clock/advance".into(), json.clone(), Some(json!({"seconds": seconds}).to_string()));
    for seconds in [0, 86_401] {
        let (status, refused) = advance(seconds).await;
        assert_eq!((status, refused["code"].as_str()), (422, Some("validation_failed")), "{seconds}");
    }
    assert_eq!(advance(15 * 60).await.0, 200);
    let (_, polled) = call(Method::GET, format!("/v2/sca_sessions/{token}"), vec![], None).await;
    assert_eq!(polled["result"], "deny", "expired by the advanced clock");
    // Production has no such endpoint; the in-process harness's sandbox
    // (a hand-moved clock) neither.
    let absent = app.call(Method::POST, "/dev/clock/advance", &[], Some(r#"{"seconds":1}"#)).await;
    assert_eq!((absent.status.as_u16(), absent.code()), (404, "not_found"));
}
