//! Abuse limits over HTTP: 429 with Retry-After and a code saying which.

use axum::http::Method;
use passgate::config::Mode;
use passgate::store::Rate;

use crate::helpers::{spawn_app_with, transfer_body};

#[tokio::test]
async fn a_user_with_too_many_open_approvals_gets_a_429_and_no_sms() {
    let app = spawn_app_with(Mode::Sandbox, |c| c.limits.open_sessions_per_user = 3).await;
    for cents in 1..=3 {
        app.start_transfer(&transfer_body(&format!("0.0{cents}")), "passkey").await;
    }
    let refused = app.transfer(&transfer_body("9.99"), "passkey", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (429, "too_many_open_sessions"), "{:?}", refused.body);
    let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "{retry}");
    assert!(refused.body.get("sca_session_token").is_none());
    assert_eq!(app.call(Method::GET, "/dev/sms", &[], None).await.body.as_array().unwrap().len(), 3);
    // Denying one frees its place.
    let link = app.latest_link().await;
    assert_eq!(app.approval_post(&link, "deny", None).await.status, 200);
    let freed = app.transfer(&transfer_body("9.99"), "passkey", None).await;
    assert_eq!((freed.status.as_u16(), freed.code()), (428, "sca_required"));
}

#[tokio::test]
async fn sms_to_one_user_are_limited_per_window() {
    let app = spawn_app_with(Mode::Sandbox, |c| c.limits.sms_per_user = Rate { burst: 2, interval_ms: 60_000 }).await;
    for amount in ["1.00", "2.00"] {
        let token = app.start_transfer(&transfer_body(amount), "passkey").await;
        app.approval_post(&app.latest_link().await, "deny", None).await;
        assert!(!token.is_empty());
    }
    let refused = app.transfer(&transfer_body("3.00"), "passkey", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (429, "sms_rate_limited"));
    assert_eq!(refused.headers["retry-after"], "60");
    // The mock method sends no SMS: not limited by it.
    let mock = app.transfer(&transfer_body("3.00"), "mock", None).await;
    assert_eq!((mock.status.as_u16(), mock.code()), (428, "sca_required"));
    app.clock.advance_millis(60_000);
    let later = app.transfer(&transfer_body("3.00"), "passkey", None).await;
    assert_eq!((later.status.as_u16(), later.code()), (428, "sca_required"));
}

#[tokio::test]
async fn a_partner_opening_sessions_too_fast_gets_a_429() {
    let app = spawn_app_with(Mode::Sandbox, |c| c.limits.sessions_per_partner = Rate { burst: 2, interval_ms: 1_000 }).await;
    for _ in 0..2 {
        let token = app.start_transfer(&transfer_body("1.00"), "mock").await;
        app.mock_decide(&token, "deny").await;
    }
    let refused = app.transfer(&transfer_body("1.00"), "mock", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (429, "partner_rate_limited"));
    assert_eq!(refused.headers["retry-after"], "1");
    // Another partner is not slowed down by this one.
    let other = axum::http::Request::post("/v2/sepa/transfers")
        .header("authorization", format!("Bearer {}", app.creds.embed_partner_token))
        .header("content-type", "application/json")
        .header("x-qonto-2fa-preference", "mock")
        .body(axum::body::Body::from(transfer_body("1.00")))
        .unwrap();
    let other = app.send(other).await;
    assert_eq!((other.status.as_u16(), other.code()), (428, "sca_required"));
}
