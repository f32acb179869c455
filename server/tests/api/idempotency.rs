//! `X-Qonto-Idempotency-Key`: a retried create returns the first success,
//! byte for byte, without running again.

use axum::http::Method;

use crate::helpers::{spawn_app, transfer_body, TestApp};

const KEY: &str = "9b2f7c1e-4a8d-4f3b-8c6e-2d1a0b9c8e7f";

async fn create(app: &TestApp, body: &str, key: &str, token: Option<&str>) -> crate::helpers::Reply {
    let mut headers = vec![("x-qonto-2fa-preference", "mock"), ("x-qonto-idempotency-key", key)];
    if let Some(token) = token {
        headers.push(("x-qonto-sca-session-token", token));
    }
    app.call(Method::POST, "/v2/sepa/transfers", &headers, Some(body)).await
}

fn transfers(list: &crate::helpers::Reply) -> usize {
    list.body["transfers"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_retried_create_returns_the_first_response_and_runs_once() {
    let app = spawn_app().await;
    let body = transfer_body("250.00");
    // The 428 is not remembered: each first call opens its own session.
    let first = create(&app, &body, KEY, None).await;
    assert_eq!((first.status.as_u16(), first.code()), (428, "sca_required"));
    let again = create(&app, &body, KEY, None).await;
    assert_eq!((again.status.as_u16(), again.code()), (428, "sca_required"));
    let token = first.body["sca_session_token"].as_str().unwrap().to_owned();
    app.mock_decide(&token, "allow").await;

    let created = create(&app, &body, KEY, Some(&token)).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    // The same retry, with or without the token: the same bytes, no new transfer.
    for retry in [create(&app, &body, KEY, Some(&token)).await, create(&app, &body, KEY, None).await] {
        assert_eq!(retry.status, 201);
        assert_eq!(retry.body, created.body);
        assert_eq!(retry.headers["content-type"], "application/json");
    }
    assert_eq!(transfers(&app.call(Method::GET, "/v2/sepa/transfers", &[], None).await), 1);
}

#[tokio::test]
async fn the_replayed_body_is_byte_identical() {
    let app = spawn_app().await;
    let body = transfer_body("1.00");
    let token = create(&app, &body, KEY, None).await.body["sca_session_token"].as_str().unwrap().to_owned();
    app.mock_decide(&token, "allow").await;
    let raw = |app: &TestApp| {
        let request = axum::http::Request::post("/v2/sepa/transfers")
            .header("authorization", format!("Bearer {}", app.token()))
            .header("content-type", "application/json")
            .header("x-qonto-2fa-preference", "mock")
            .header("x-qonto-idempotency-key", KEY)
            .header("x-qonto-sca-session-token", &token)
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let router = app.router.clone();
        async move {
            let response = tower::ServiceExt::oneshot(router, request).await.unwrap();
            http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes()
        }
    };
    let first = raw(&app).await;
    let again = raw(&app).await;
    assert!(!first.is_empty());
    assert_eq!(first, again);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_a_422_and_runs_nothing() {
    let app = spawn_app().await;
    let body = transfer_body("10.00");
    let token = create(&app, &body, KEY, None).await.body["sca_session_token"].as_str().unwrap().to_owned();
    app.mock_decide(&token, "allow").await;
    assert_eq!(create(&app, &body, KEY, Some(&token)).await.status, 201);
    let other = create(&app, &transfer_body("10.01"), KEY, None).await;
    assert_eq!((other.status.as_u16(), other.code()), (422, "idempotency_key_reused"));
    assert_eq!(other.body["field"], "X-Qonto-Idempotency-Key");
    assert_eq!(transfers(&app.call(Method::GET, "/v2/sepa/transfers", &[], None).await), 1);
}

#[tokio::test]
async fn a_key_is_the_partners_own_and_lasts_30_minutes() {
    let app = spawn_app().await;
    let body = transfer_body("5.00");
    let token = create(&app, &body, KEY, None).await.body["sca_session_token"].as_str().unwrap().to_owned();
    app.mock_decide(&token, "allow").await;
    assert_eq!(create(&app, &body, KEY, Some(&token)).await.status, 201);
    // Another partner with the same key: nothing remembered for it.
    let request = axum::http::Request::post("/v2/sepa/transfers")
        .header("authorization", format!("Bearer {}", app.creds.embed_partner_token))
        .header("content-type", "application/json")
        .header("x-qonto-2fa-preference", "mock")
        .header("x-qonto-idempotency-key", KEY)
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    let other = app.send(request).await;
    assert_eq!((other.status.as_u16(), other.code()), (428, "sca_required"));
    app.clock.advance_millis(30 * 60 * 1000 + 1);
    let later = create(&app, &body, KEY, None).await;
    assert_eq!((later.status.as_u16(), later.code()), (428, "sca_required"), "forgotten after 30 minutes");
}

#[tokio::test]
async fn a_malformed_key_is_a_422_naming_the_header() {
    let app = spawn_app().await;
    for bad in ["", "has space", &"k".repeat(256)] {
        let reply = create(&app, &transfer_body("1.00"), bad, None).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, "validation_failed"), "{bad:?}");
        assert_eq!(reply.body["field"], "X-Qonto-Idempotency-Key");
    }
}
