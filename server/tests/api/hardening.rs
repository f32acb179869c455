//! Fail closed, keep no secret at rest, refuse what the user would not see.

use std::process::Command;

use axum::http::Method;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use passgate::config::Mode;
use passgate::store::{Store, StoreOptions};
use serde_json::{json, Value};

use crate::helpers::{soft_passkey, spawn_app, spawn_app_in, spawn_app_with, transfer_body, IBAN, ORIGIN};

#[tokio::test]
async fn in_production_the_outbox_keeps_no_approval_link() {
    let app = spawn_app_in(Mode::Production).await;
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let kept = app.store.sms_outbox(None, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].link.as_deref(), kept[0].otp.as_deref()), (None, None));
    assert!(!kept[0].body.contains("/sca/"), "{}", kept[0].body);
    assert!(kept[0].body.contains("[redacted]"));
    // And production has no outbox endpoint.
    let outbox = app.call(Method::GET, "/dev/sms", &[], None).await;
    assert_eq!((outbox.status.as_u16(), outbox.code()), (404, "not_found"));
}

#[tokio::test]
async fn unknown_fields_and_hidden_characters_are_refused_before_any_sca() {
    let app = spawn_app().await;
    let cases = [
        (json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN}, "fees": "OUR"}), "fees"),
        (json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN, "bic": "X"}}), "beneficiary.bic"),
        (json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "ACME\u{202E}SAS", "iban": IBAN}}), "beneficiary.name"),
        (json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "AC\u{200B}ME", "iban": IBAN}}), "beneficiary.name"),
        (json!({"amount": "1", "currency": "EUR", "beneficiary": {"name": "A", "iban": IBAN}, "reference": "INV\u{2066}42"}), "reference"),
    ];
    for (body, field) in cases {
        let reply = app.transfer(&body.to_string(), "passkey", None).await;
        assert_eq!((reply.status.as_u16(), reply.code(), reply.body["field"].as_str()), (422, "validation_failed", Some(field)), "{body}");
    }
    let beneficiary = json!({"beneficiary": {"name": "ACME", "iban": IBAN}, "note": "x"}).to_string();
    let reply = app.call(Method::POST, "/v2/sepa/beneficiaries", &[("x-qonto-2fa-preference", "mock")], Some(&beneficiary)).await;
    assert_eq!((reply.status.as_u16(), reply.code(), reply.body["field"].as_str()), (422, "validation_failed", Some("note")));
    assert_eq!(app.call(Method::GET, "/dev/sms", &[], None).await.body, json!([]));
}

#[tokio::test]
async fn an_https_origin_gets_hsts_and_plain_http_does_not() {
    let app = spawn_app_with(Mode::Production, |c| {
        c.origin = url::Url::parse("https://sca.example.com").unwrap();
        c.rp_id = "sca.example.com".into();
    })
    .await;
    let reply = app.call(Method::GET, "/v2/sepa/transfers", &[], None).await;
    assert_eq!(reply.headers["strict-transport-security"], "max-age=63072000; includeSubDomains");
    let plain = spawn_app().await.call(Method::GET, "/v2/sepa/transfers", &[], None).await;
    assert!(!plain.headers.contains_key("strict-transport-security"));
}

fn passgate(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passgate"));
    command.args(args).env_remove("PASSGATE_MODE").env_remove("PASSGATE_BIND").env_remove("PASSGATE_ORIGIN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[test]
fn a_sandbox_refuses_to_start_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let out = passgate(&["serve"], &[("PASSGATE_BIND", "0.0.0.0:0"), ("DATABASE_URL", &url)]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PASSGATE_SANDBOX_PUBLIC"), "{stderr}");
    let out = passgate(&["serve"], &[("PASSGATE_ORIGIN", "https://sca.example.com"), ("DATABASE_URL", &url)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PASSGATE_SANDBOX_PUBLIC"));
}

#[tokio::test]
async fn demo_refuses_a_production_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let store = Store::open(&url, &StoreOptions::new(&passgate::sealed::SecretsKey::sandbox())).await.unwrap();
    store.claim_mode("production").await.unwrap();
    drop(store);
    let out = passgate(&["demo"], &[("DATABASE_URL", &url)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("production"));
    assert!(out.stdout.is_empty(), "no tokens printed");
    let out = passgate(&["demo"], &[("DATABASE_URL", &url), ("PASSGATE_MODE", "production")]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn production_refuses_a_sandbox_database() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let demo = passgate(&["demo"], &[("DATABASE_URL", &url)]);
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let key = ("PASSGATE_SECRETS_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    let production = [("DATABASE_URL", url.as_str()), ("PASSGATE_MODE", "production"), ("PASSGATE_BIND", "127.0.0.1:0"), key];
    let out = passgate(&["serve"], &[&production[..], &[("PASSGATE_SMS_PROVIDER", "none")]].concat());
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sandbox Passgate"), "{stderr}");
}

/// Rewrites the answer's clientDataJSON with `crossOrigin: true`.
fn cross_origin(mut answer: Value) -> Value {
    let encoded = answer["response"]["clientDataJSON"].as_str().unwrap();
    let mut client_data: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
    client_data["crossOrigin"] = json!(true);
    answer["response"]["clientDataJSON"] = json!(URL_SAFE_NO_PAD.encode(client_data.to_string()));
    answer
}

#[tokio::test]
async fn cross_origin_answers_are_refused_at_registration_and_authentication() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let link = app.latest_link().await;
    let start = app.register_start(&link).await;
    let options = serde_json::from_value(start.body).unwrap();
    let answer =
        webauthn_authenticator_rs::WebauthnAuthenticator::do_registration(&mut authenticator, url::Url::parse(ORIGIN).unwrap(), options)
            .unwrap();
    let refused = app.approval_post(&link, "passkey/register/finish", Some(cross_origin(serde_json::to_value(answer).unwrap()))).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "passkey_rejected"));
    assert!(refused.body["message"].as_str().unwrap().contains("crossOrigin"), "{:?}", refused.body);
    assert_eq!(app.register_passkey(&link, &mut authenticator).await.status, 200);

    app.start_transfer(&transfer_body("2.00"), "passkey").await;
    let link = app.latest_link().await;
    let assertion = app.passkey_assertion(&link, &mut authenticator).await;
    let refused = app.approval_post(&link, "passkey/authenticate/finish", Some(cross_origin(assertion))).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "passkey_rejected"));
    assert!(refused.body["message"].as_str().unwrap().contains("crossOrigin"), "{:?}", refused.body);
    assert_eq!(app.approval_view(&link).await.body["state"], "waiting");
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_api_answers_are_not_stored() {
    let app = spawn_app().await;
    let token = app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let answers = [
        app.call(Method::GET, "/v2/sepa/transfers", &[], None).await,
        app.call(Method::GET, &format!("/v2/sca_sessions/{token}"), &[], None).await,
        app.approval_view(&app.latest_link().await).await,
        app.call(Method::GET, "/no/such/path", &[], None).await,
    ];
    for answer in answers {
        let headers = &answer.headers;
        assert_eq!(headers["referrer-policy"], "no-referrer", "{headers:?}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    }
    let api = app.call(Method::GET, "/v2/sepa/transfers", &[], None).await;
    assert_eq!(api.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_probes_say_the_process_is_up_and_its_database_ready() {
    let app = spawn_app().await;
    let health = app.call(Method::GET, "/healthz", &[], None).await;
    assert_eq!((health.status.as_u16(), health.body["status"].as_str()), (200, Some("ok")));
    let ready = app.call(Method::GET, "/readyz", &[], None).await;
    assert_eq!((ready.status.as_u16(), ready.body["status"].as_str()), (200, Some("ready")));
    assert_eq!(ready.headers["cache-control"], "no-store");
}
