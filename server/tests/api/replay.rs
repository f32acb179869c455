use axum::http::Method;
use futures::future::join_all;

use crate::helpers::{soft_passkey, spawn_app, transfer_body};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_replays_of_one_allowed_token_run_the_transfer_once() {
    let app = spawn_app().await;
    let body = transfer_body("50.00");
    let token = app.start_transfer(&body, "mock").await;
    app.mock_decide(&token, "allow").await;

    let tasks = (0..20).map(|_| {
        let (app, body, token) = (app.clone(), body.clone(), token.clone());
        tokio::spawn(async move { app.transfer(&body, "mock", Some(&token)).await })
    });
    let replies: Vec<_> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let created = replies.iter().filter(|r| r.status == 201).count();
    let consumed = replies.iter().filter(|r| r.code() == "sca_session_consumed").count();
    assert_eq!((created, consumed), (1, 19), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let list = app.call(Method::GET, "/v2/sepa/transfers", &[], None).await;
    assert_eq!(list.body["transfers"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn any_change_to_the_request_invalidates_the_approval() {
    let app = spawn_app().await;
    let body = transfer_body("1200.00");
    let token = app.start_transfer(&body, "mock").await;
    app.mock_decide(&token, "allow").await;

    let changed_amount = app.transfer(&transfer_body("1200.01"), "mock", Some(&token)).await;
    assert_eq!((changed_amount.status.as_u16(), changed_amount.code()), (412, "sca_request_mismatch"));
    let reformatted = app.transfer(&body.replace(':', ": "), "mock", Some(&token)).await;
    assert_eq!(reformatted.code(), "sca_request_mismatch");
    let other_path = app
        .call(
            Method::POST,
            "/v2/sepa/transfers?x=1",
            &[("x-qonto-2fa-preference", "mock"), ("x-qonto-sca-session-token", &token)],
            Some(&body),
        )
        .await;
    assert_eq!(other_path.code(), "sca_request_mismatch");
    let no_preference = app.call(Method::POST, "/v2/sepa/transfers", &[("x-qonto-sca-session-token", &token)], Some(&body)).await;
    assert_eq!(no_preference.code(), "sca_request_mismatch");
    // The mismatches consumed nothing: the genuine replay still runs.
    assert_eq!(app.transfer(&body, "mock", Some(&token)).await.status, 201);
}

#[tokio::test]
async fn pending_unknown_forged_and_foreign_tokens_get_their_412() {
    let app = spawn_app().await;
    let body = transfer_body("1.00");
    let token = app.start_transfer(&body, "mock").await;
    assert_eq!(app.transfer(&body, "mock", Some(&token)).await.code(), "sca_session_pending");
    assert_eq!(app.transfer(&body, "mock", Some(&"A".repeat(43))).await.code(), "sca_session_invalid");
    assert_eq!(app.transfer(&body, "mock", Some("forged")).await.code(), "sca_session_invalid");

    app.mock_decide(&token, "allow").await;
    let foreign = axum::http::Request::post("/v2/sepa/transfers")
        .header("authorization", format!("Bearer {}", app.creds.embed_partner_token))
        .header("content-type", "application/json")
        .header("x-qonto-2fa-preference", "mock")
        .header("x-qonto-sca-session-token", &token)
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    let reply = app.send(foreign).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (412, "sca_session_invalid"));
    assert_eq!(app.transfer(&body, "mock", Some(&token)).await.status, 201);
}

#[tokio::test]
async fn a_session_allowed_before_a_restart_is_replayed_after_it() {
    let app = spawn_app().await;
    let body = transfer_body("75.00");
    let token = app.start_transfer(&body, "passkey").await;
    let link = app.latest_link().await;
    let mut authenticator = soft_passkey();
    // The ceremony starts on one process and finishes on another.
    let start = app.register_start(&link).await;
    let options = serde_json::from_value(start.body).unwrap();
    let answer = webauthn_authenticator_rs::WebauthnAuthenticator::do_registration(
        &mut authenticator,
        url::Url::parse(crate::helpers::ORIGIN).unwrap(),
        options,
    )
    .unwrap();
    let other_process = app.restart().await;
    let finished = other_process.approval_post(&link, "passkey/register/finish", Some(serde_json::to_value(answer).unwrap())).await;
    assert_eq!(finished.status, 200, "{:?}", finished.body);
    // So does the assertion that approves with the new passkey.
    let assertion = other_process.passkey_assertion(&link, &mut authenticator).await;
    let restarted = other_process.restart().await;
    drop(app);
    let approved = restarted.approval_post(&link, "passkey/authenticate/finish", Some(assertion)).await;
    assert_eq!(approved.body["state"], "allowed", "{:?}", approved.body);
    assert_eq!(restarted.poll(&token).await.body["result"], "allow");
    assert_eq!(restarted.transfer(&body, "passkey", Some(&token)).await.status, 201);
}

/// Two instances on one database (on PostgreSQL under `make test`, two
/// pools; on SQLite, two connections): fifty replays of one allowed
/// session spread over both run the transfer once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_replays_spread_over_two_instances_run_the_transfer_once() {
    let first = spawn_app().await;
    let second = first.restart().await;
    let body = transfer_body("60.00");
    let token = first.start_transfer(&body, "mock").await;
    second.mock_decide(&token, "allow").await;

    let tasks = (0..50).map(|i| {
        let (app, body, token) = (if i % 2 == 0 { first.clone() } else { second.clone() }, body.clone(), token.clone());
        tokio::spawn(async move { app.transfer(&body, "mock", Some(&token)).await })
    });
    let replies: Vec<_> = join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let created = replies.iter().filter(|r| r.status == 201).count();
    let consumed = replies.iter().filter(|r| r.code() == "sca_session_consumed").count();
    assert_eq!((created, consumed), (1, 49), "{:?}", replies.iter().map(|r| r.status).collect::<Vec<_>>());
    let list = second.call(Method::GET, "/v2/sepa/transfers", &[], None).await;
    assert_eq!(list.body["transfers"].as_array().unwrap().len(), 1);
}

/// The poll limit is kept in the database: a poll on one instance and one
/// on another within the same second: the second is refused.
#[tokio::test]
async fn the_poll_limit_holds_across_instances() {
    let first = spawn_app().await;
    let second = first.restart().await;
    let token = first.start_transfer(&transfer_body("1.00"), "mock").await;
    let path = format!("/v2/sca_sessions/{token}");
    assert_eq!(first.call(Method::GET, &path, &[], None).await.status, 200);
    let too_soon = second.call(Method::GET, &path, &[], None).await;
    assert_eq!((too_soon.status.as_u16(), too_soon.code()), (429, "too_many_requests"));
}
