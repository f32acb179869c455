use axum::http::Method;

use crate::helpers::{spawn_app, transfer_body};

#[tokio::test]
async fn polling_more_than_once_a_second_is_a_429_with_retry_after() {
    let app = spawn_app().await;
    let token = app.start_transfer(&transfer_body("1.00"), "mock").await;
    let path = format!("/v2/sca_sessions/{token}");
    assert_eq!(app.call(Method::GET, &path, &[], None).await.status, 200);
    app.clock.advance_millis(999);
    let too_soon = app.call(Method::GET, &path, &[], None).await;
    assert_eq!((too_soon.status.as_u16(), too_soon.code()), (429, "too_many_requests"));
    assert_eq!(too_soon.headers["retry-after"], "1");
    app.clock.advance_millis(1);
    assert_eq!(app.call(Method::GET, &path, &[], None).await.status, 200);
}

#[tokio::test]
async fn a_session_expires_after_15_minutes_and_then_reads_deny() {
    let app = spawn_app().await;
    let body = transfer_body("1.00");
    let token = app.start_transfer(&body, "mock").await;
    app.mock_decide(&token, "allow").await;
    app.clock.advance_millis(15 * 60 * 1000 - 1_001);
    assert_eq!(app.poll(&token).await.body["result"], "allow");
    let expired = app.poll(&token).await;
    assert_eq!(expired.body["result"], "deny");
    assert!(expired.body["canceled_at"].as_str().unwrap().ends_with('Z'));
    let replay = app.transfer(&body, "mock", Some(&token)).await;
    assert_eq!((replay.status.as_u16(), replay.code()), (412, "sca_session_expired"));
}

#[tokio::test]
async fn another_partners_session_is_not_found() {
    let app = spawn_app().await;
    let token = app.start_transfer(&transfer_body("1.00"), "mock").await;
    let request = axum::http::Request::get(format!("/v2/sca_sessions/{token}"))
        .header("authorization", format!("Bearer {}", app.creds.embed_partner_token))
        .body(axum::body::Body::empty())
        .unwrap();
    let foreign = app.send(request).await;
    assert_eq!((foreign.status.as_u16(), foreign.code()), (404, "not_found"));
    let unknown = app.call(Method::GET, "/v2/sca_sessions/nope", &[], None).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "not_found"));
    // Someone else's poll did not count against the owner's rate limit
    // (same instant: no time passes on the test clock).
    assert_eq!(app.call(Method::GET, &format!("/v2/sca_sessions/{token}"), &[], None).await.status, 200);
}

#[tokio::test]
async fn a_passkey_session_cannot_be_decided_through_the_mock_endpoints() {
    let app = spawn_app().await;
    let token = app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let decided = app.mock_decide(&token, "allow").await;
    assert_eq!((decided.status.as_u16(), decided.code()), (404, "not_found"));
    let polled = app.call(Method::GET, &format!("/v2/mocked_sca_sessions/{token}"), &[], None).await;
    assert_eq!((polled.status.as_u16(), polled.code()), (404, "not_found"));
    // Nor polled there: the refused poll left the rate limit alone (same
    // instant: no time passes on the test clock).
    let polled = app.call(Method::GET, &format!("/v2/sca_sessions/{token}"), &[], None).await;
    assert_eq!((polled.status.as_u16(), polled.body["result"].as_str()), (200, Some("waiting")));
}
