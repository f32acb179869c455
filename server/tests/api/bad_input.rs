use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::json;

use crate::helpers::{spawn_app, transfer_body, IBAN};

#[tokio::test]
async fn a_missing_or_wrong_bearer_token_is_a_401_json() {
    let app = spawn_app().await;
    let no_auth = app.send(Request::get("/v2/sepa/transfers").body(Body::empty()).unwrap()).await;
    assert_eq!((no_auth.status.as_u16(), no_auth.code()), (401, "unauthorized"));
    assert!(no_auth.headers.contains_key("www-authenticate"));
    for header in
        [format!("Bearer {}", "A".repeat(43)), "Bearer nope".into(), format!("Basic {}", app.token()), format!("Bearer{}", app.token())]
    {
        let reply = app.send(Request::get("/v2/sepa/transfers").header("authorization", header.clone()).body(Body::empty()).unwrap()).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (401, "unauthorized"), "{header}");
    }
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = spawn_app().await;
    // RFC 6750 section 2.1 via RFC 9110 section 11.1: the scheme's case is free.
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let header = format!("{scheme} {}", app.token());
        let reply = app.send(Request::get("/v2/sepa/transfers").header("authorization", header).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, 200, "{scheme}: {:?}", reply.body);
    }
}

#[tokio::test]
async fn malformed_json_is_a_400_and_a_wrong_content_type_a_415() {
    let app = spawn_app().await;
    let malformed = app.transfer("{\"amount\":", "mock", None).await;
    assert_eq!((malformed.status.as_u16(), malformed.code()), (400, "invalid_json"));
    let request = Request::post("/v2/sepa/transfers")
        .header("authorization", format!("Bearer {}", app.token()))
        .header("content-type", "text/plain")
        .body(Body::from(transfer_body("1.00")))
        .unwrap();
    let reply = app.send(request).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (415, "unsupported_media_type"));
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413() {
    let app = spawn_app().await;
    let huge = json!({"amount": "1.00", "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN}, "reference": "x".repeat(70 * 1024)});
    let reply = app.transfer(&huge.to_string(), "mock", None).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (413, "payload_too_large"));
}

#[tokio::test]
async fn invalid_fields_are_422_naming_the_field_before_any_sca() {
    let app = spawn_app().await;
    let cases = [
        (json!({"amount": "-1", "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN}}), "amount"),
        (json!({"amount": "1.001", "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN}}), "amount"),
        (json!({"amount": 12, "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN}}), "amount"),
        (
            json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "A", "iban": "FR7630006000011234567890188"}}),
            "beneficiary.iban",
        ),
        (json!({"amount": "1", "currency": "GBP", "beneficiary": {"name": "A", "iban": IBAN}}), "currency"),
        (json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "A"}}), "beneficiary.iban"),
    ];
    for (body, field) in cases {
        let reply = app.transfer(&body.to_string(), "passkey", None).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, "validation_failed"), "{body}");
        assert_eq!(reply.body["field"], field, "{body}");
    }
    // No session was opened and no SMS sent for any of them.
    let outbox = app.call(Method::GET, "/dev/sms", &[], None).await;
    assert_eq!(outbox.body, json!([]));
}

#[tokio::test]
async fn unknown_routes_are_a_404_json() {
    let app = spawn_app().await;
    let reply = app.call(Method::GET, "/v2/nothing-here", &[], None).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (404, "not_found"));
}

#[tokio::test]
async fn the_sms_outbox_filters_by_phone_number() {
    let app = spawn_app().await;
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let mine = app.call(Method::GET, &format!("/dev/sms?to={}", app.creds.user_phone.replace('+', "%2B")), &[], None).await;
    assert_eq!(mine.body.as_array().unwrap().len(), 1);
    let other = app.call(Method::GET, "/dev/sms?to=%2B4915112345678", &[], None).await;
    assert_eq!(other.body, json!([]));
}

#[tokio::test]
async fn the_sms_outbox_returns_the_newest_messages_up_to_the_limit() {
    let app = spawn_app().await;
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let first = app.call(Method::GET, "/dev/sms", &[], None).await.body[0].clone();
    app.start_transfer(&transfer_body("2.00"), "passkey").await;
    let all = app.call(Method::GET, "/dev/sms", &[], None).await;
    assert_eq!(all.body.as_array().unwrap().len(), 2);
    assert_eq!(all.body[1], first);
    let newest = app.call(Method::GET, "/dev/sms?limit=1", &[], None).await;
    assert_eq!(newest.body.as_array().unwrap().len(), 1);
    assert_eq!(newest.body[0], all.body[0]);
    for bad in ["0", "201", "-1", "ten"] {
        let reply = app.call(Method::GET, &format!("/dev/sms?limit={bad}"), &[], None).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, "validation_failed"), "limit={bad}");
        assert_eq!(reply.body["field"], "limit");
    }
}

#[tokio::test]
async fn no_input_produces_a_5xx_or_a_non_json_error() {
    let app = spawn_app().await;
    let link = {
        app.start_transfer(&transfer_body("1.00"), "passkey").await;
        app.latest_link().await
    };
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"{}".to_vec(),
        b"\xff\xfe\x00".to_vec(),
        br#"{"amount":"1e999999","currency":"EUR","beneficiary":{"name":"A","iban":"x"}}"#.to_vec(),
        br#"{"amount":"99999999999999999999999999","currency":"EUR","beneficiary":{"name":"A","iban":"FR7630006000011234567890189"}}"#.to_vec(),
        br#"{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"AAAA","authenticatorData":"AAAA","signature":"AAAA","attestationObject":"AAAA"},"extensions":{}}"#.to_vec(),
        "{\"beneficiary\":{\"name\":\"\u{202e}\u{0}\",\"iban\":\"\u{1F600}\"}}".as_bytes().to_vec(),
        vec![b'['; 10_000],
    ];
    let routes = [
        (Method::POST, "/v2/sepa/transfers".to_owned()),
        (Method::POST, "/v2/sepa/beneficiaries".to_owned()),
        (Method::GET, "/v2/sca_sessions/%FF%FE".to_owned()),
        (Method::POST, "/v2/mocked_sca_sessions/x/allow".to_owned()),
        (Method::DELETE, "/v2/sepa/transfers".to_owned()),
        (Method::POST, format!("/api/approvals/{link}/passkey/register/finish")),
        (Method::POST, format!("/api/approvals/{link}/passkey/authenticate/finish")),
        (Method::POST, "/api/approvals/..%2F..%2Fetc%2Fpasswd/deny".to_owned()),
        (Method::GET, "/..%2F..%2Fetc%2Fpasswd".to_owned()),
    ];
    for (method, path) in &routes {
        for body in &bodies {
            for preference in [&b"mock"[..], b"passkey", b"\xffpasskey"] {
                let request = Request::builder()
                    .method(method.clone())
                    .uri(path.as_str())
                    .header("authorization", format!("Bearer {}", app.token()))
                    .header("content-type", "application/json")
                    .header("x-qonto-2fa-preference", axum::http::HeaderValue::from_bytes(preference).unwrap())
                    .header("x-qonto-sca-session-token", "not-a-token")
                    .body(Body::from(body.clone()))
                    .unwrap();
                let reply = app.send(request).await;
                assert!(reply.status.as_u16() < 500, "{method} {path} {:?} → {}", String::from_utf8_lossy(body), reply.status);
                assert!(reply.body.get("code").is_some(), "{method} {path} → {} {:?}", reply.status, reply.body);
            }
        }
    }
    // The approval was not touched by any of it.
    assert_eq!(app.approval_view(&link).await.body["state"], "waiting");
}
