//! The audit log and the evidence of each passkey approval.

use axum::http::Method;
use passgate::audit::report::{self, Check};
use passgate::sca::Retention;

use crate::helpers::{soft_passkey, spawn_app, transfer_body, TestApp};

/// The tests' deployment key (the sandbox's).
fn key() -> passgate::audit::evidence::EvidenceKey {
    let config = crate::helpers::config("sqlite://unused", passgate::config::Mode::Sandbox);
    passgate::audit::evidence::EvidenceKey::new(&config.secrets_key)
}

/// A passkey approval of `amount` by the user's passkey (created first
/// if `authenticator` has none yet); its session id.
async fn approved(app: &TestApp, authenticator: &mut webauthn_authenticator_rs::softpasskey::SoftPasskey, amount: &str) -> String {
    let token = app.start_transfer(&transfer_body(amount), "passkey").await;
    assert_eq!(app.authenticate_passkey(&app.latest_link().await, authenticator).await.status, 200);
    app.session_id(&token).await
}

#[tokio::test]
async fn a_passkey_approval_keeps_evidence_that_reverifies_offline() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    let first = app.start_transfer(&transfer_body("1.00"), "passkey").await;
    assert_eq!(app.register_and_approve(&app.latest_link().await, &mut authenticator).await.status, 200);
    let token = app.start_transfer(&transfer_body("1200.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.authenticate_passkey(&link, &mut authenticator).await.status, 200);

    let session = app.session_id(&token).await;
    let report = report::report(&app.store, &session, &key()).await.unwrap();
    assert!(report.holds(), "{report:?}");
    assert!(matches!(&report.verification, Check::Verified(v) if v.holds));
    let evidence = report.evidence.as_ref().unwrap();
    assert_eq!(evidence["summary"]["amount"], "1,200.00", "what the user saw");
    assert_eq!(evidence["summary"]["iban"], "FR76 3000 6000 0112 3456 7890 189");
    for field in ["challenge", "client_data_json", "authenticator_data", "signature", "public_key"] {
        assert!(!evidence["assertion"][field].is_null(), "{field}");
    }
    let kinds: Vec<&str> = report.audit.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["session.created", "session.decided"]);
    assert_eq!(report.audit[1].detail["decision"], "allow");

    // The first approval created the passkey, then approved with it:
    // enrolled, then decided by an assertion, logged and proven alike.
    let enrolment = report::report(&app.store, &app.session_id(&first).await, &key()).await.unwrap();
    let kinds: Vec<&str> = enrolment.audit.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["session.created", "password.accepted", "passkey.enrolled", "session.decided"]);
    assert!(enrolment.holds(), "{enrolment:?}");

    // No secret and no phone number in what is kept.
    let kept = serde_json::to_string(&(report.audit, report.evidence, enrolment.audit, enrolment.evidence)).unwrap();
    for secret in [token.as_str(), first.as_str(), link.as_str(), app.creds.user_phone.as_str(), app.token()] {
        assert!(!kept.contains(secret), "a secret or phone number is in the audit log");
    }
}

/// A first passkey created from the link signs nothing of the approval;
/// the assertion that follows it does: `passgate evidence` verifies that
/// approval like any other (signature with the registered key, binding).
#[tokio::test]
async fn an_approval_with_a_first_passkey_from_the_link_is_verified_offline() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    let token = app.start_transfer(&transfer_body("480.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_and_approve(&link, &mut authenticator).await.body["state"], "allowed");
    let session = app.session_id(&token).await;

    let report = report::report(&app.store, &session, &key()).await.unwrap();
    assert!(matches!(&report.verification, Check::Verified(v) if v.holds && v.failed.is_empty()), "{report:?}");
    let evidence = report.evidence.as_ref().unwrap();
    assert_eq!(evidence["kind"], "authentication");
    assert_eq!(evidence["summary"]["amount"], "480.00", "what the user saw");
    assert!(evidence["binding_mac"].is_string());
    // The key it verifies with is the one enrolled through this very link.
    let credential =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, evidence["assertion"]["credential_id"].as_str().unwrap())
            .unwrap();
    let entries = app.store.registry_of_credential(&credential).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].user_id, app.user_id().await);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_passgate"))
        .args(["evidence", &session])
        .env("DATABASE_URL", &app.database_url)
        .env_remove("PASSGATE_MODE")
        .env_remove("PASSGATE_BIND")
        .env_remove("PASSGATE_ORIGIN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["verification"], serde_json::json!({"result": "verified", "holds": true, "failed": []}));
    let kinds: Vec<&str> = printed["audit"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["session.created", "password.accepted", "passkey.enrolled", "session.decided"]);

    // A registration row kept by an earlier Passgate still reads as
    // nothing to verify, never as proof.
    let legacy = serde_json::json!({"kind": "registration", "session_id": session});
    assert!(matches!(report::check(&legacy, &session, &key(), None), Check::NothingToVerify));
}

#[tokio::test]
async fn tampered_evidence_does_not_hold() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    app.register_passkey(&app.latest_link().await, &mut authenticator).await;
    let token = app.start_transfer(&transfer_body("9.00"), "passkey").await;
    app.authenticate_passkey(&app.latest_link().await, &mut authenticator).await;
    let kept = app.store.evidence_of_session(&app.session_id(&token).await).await.unwrap().unwrap();
    let mut evidence: serde_json::Value = serde_json::from_str(&kept).unwrap();
    evidence["assertion"]["challenge"] = serde_json::json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let assertion: passgate::audit::verify::AssertionEvidence = serde_json::from_value(evidence["assertion"].clone()).unwrap();
    assert!(!assertion.verify().holds);
}

#[tokio::test]
async fn evidence_copied_to_another_session_or_edited_does_not_hold() {
    use passgate::audit::verify::Failure;
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    app.register_passkey(&app.latest_link().await, &mut authenticator).await;
    let a = approved(&app, &mut authenticator, "9.00").await;
    let b = approved(&app, &mut authenticator, "950.00").await;
    let kept_a: serde_json::Value = serde_json::from_str(&app.store.evidence_of_session(&a).await.unwrap().unwrap()).unwrap();
    let registered = report::registered_key(&app.store, &kept_a, &app.user_id().await).await.unwrap();
    let registered = registered.as_ref();
    assert!(registered.is_some(), "the passkey is in the credential registry");
    let failures = |kept: &serde_json::Value, session: &str| match report::check(kept, session, &key(), registered) {
        Check::Verified(v) => v.failed,
        other => panic!("{other:?}"),
    };
    assert_eq!(failures(&kept_a, &a), vec![], "A's own evidence holds");
    // A's row copied onto B (its session id edited too): the MAC binds A.
    assert_eq!(failures(&kept_a, &b), vec![Failure::SessionMismatch, Failure::BindingInvalid]);
    let mut moved = kept_a.clone();
    moved["session_id"] = serde_json::json!(b);
    assert_eq!(failures(&moved, &b), vec![Failure::BindingInvalid]);
    // The amount edited: the signature still verifies, the binding does not.
    let mut edited = kept_a.clone();
    edited["summary"]["amount"] = serde_json::json!("950.00");
    assert_eq!(failures(&edited, &a), vec![Failure::BindingInvalid]);
    // Another deployment's key cannot vouch for it either.
    let other = passgate::audit::evidence::EvidenceKey::new(
        &passgate::sealed::SecretsKey::parse("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").unwrap(),
    );
    assert!(matches!(report::check(&kept_a, &a, &other, registered), Check::Verified(v) if v.failed == vec![Failure::BindingInvalid]));
    let mut unbound = kept_a;
    unbound.as_object_mut().unwrap().remove("binding_mac");
    assert_eq!(failures(&unbound, &a), vec![Failure::BindingMissing]);
}

#[tokio::test]
async fn evidence_is_verified_with_the_registered_key_not_the_rows_own() {
    use passgate::audit::verify::Failure;
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    app.register_passkey(&app.latest_link().await, &mut authenticator).await;
    let a = approved(&app, &mut authenticator, "9.00").await;
    let kept: serde_json::Value = serde_json::from_str(&app.store.evidence_of_session(&a).await.unwrap().unwrap()).unwrap();
    // The row's key replaced by another passkey's (a forger's own).
    let other_user_key = {
        use webauthn_authenticator_rs::WebauthnAuthenticator;
        let origin = url::Url::parse(crate::helpers::ORIGIN).unwrap();
        let webauthn = webauthn_rs::WebauthnBuilder::new("localhost", &origin).unwrap().build().unwrap();
        let (options, state) = webauthn.start_passkey_registration(uuid::Uuid::new_v4(), "f", "F", None).unwrap();
        let answer = soft_passkey().do_registration(origin, options).unwrap();
        let forged = webauthn.finish_passkey_registration(&answer, &state).unwrap();
        serde_json::to_value(forged.get_public_key()).unwrap()
    };
    let mut swapped = kept.clone();
    swapped["assertion"]["public_key"] = other_user_key;
    let registered = report::registered_key(&app.store, &kept, &app.user_id().await).await.unwrap();
    match report::check(&swapped, &a, &key(), registered.as_ref()) {
        Check::Verified(v) => assert_eq!(v.failed, vec![Failure::KeyNotRegistered]),
        other => panic!("{other:?}"),
    }
    // A credential registered to nobody of this session: refused by name.
    let nobody = report::registered_key(&app.store, &kept, "another-user").await.unwrap();
    assert!(nobody.is_none());
    assert!(matches!(report::check(&kept, &a, &key(), None), Check::Verified(v) if v.failed == vec![Failure::KeyNotRegistered]));
    // The registry is append-only: a removal is appended, nothing erased.
    let credential =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, kept["assertion"]["credential_id"].as_str().unwrap())
            .unwrap();
    let entries = app.store.registry_of_credential(&credential).await.unwrap();
    assert_eq!(entries.iter().map(|e| e.added).collect::<Vec<_>>(), vec![true]);
}

#[tokio::test]
async fn refusals_and_mock_decisions_are_logged_with_the_client() {
    let app = spawn_app().await;
    let body = transfer_body("3.00");
    let token = app.start_transfer(&body, "mock").await;
    assert_eq!(app.transfer(&body, "mock", Some(&token)).await.code(), "sca_session_pending");
    let allow = app.call(Method::POST, &format!("/v2/mocked_sca_sessions/{token}/allow"), &[("user-agent", "PartnerSDK/2.1")], None).await;
    assert_eq!(allow.status, 200);
    let session = app.session_id(&token).await;
    let events = app.store.audit_of_session(&session).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["session.created", "replay.refused", "session.decided"]);
    assert_eq!(events[1].detail["code"], "sca_session_pending");
    assert_eq!(events[2].detail["by"]["method"], "mock");
    assert_eq!(events[2].user_agent.as_deref(), Some("PartnerSDK/2.1"));
}

#[tokio::test]
async fn the_retention_purge_removes_expired_sessions_and_keeps_their_evidence() {
    let app = spawn_app().await;
    let used = app.start_transfer(&transfer_body("1.00"), "mock").await;
    app.mock_decide(&used, "allow").await;
    assert_eq!(app.transfer(&transfer_body("1.00"), "mock", Some(&used)).await.status, 201);
    let unused = app.start_transfer(&transfer_body("2.00"), "passkey").await;
    let unused_id = app.session_id(&unused).await;
    let day = 24 * 60 * 60 * 1000;
    let retention = Retention { operational_ms: day, evidence_ms: 30 * day, every: std::time::Duration::from_secs(60) };
    let state = passgate::AppState::new(
        crate::helpers::config("sqlite://unused", passgate::config::Mode::Sandbox),
        app.store.clone(),
        std::sync::Arc::new(app.clock.clone()),
        std::sync::Arc::new(passgate::notify::sms::SandboxOutbox),
    )
    .unwrap();

    assert_eq!(state.sca.purge(&retention).await.unwrap().total(), 0, "nothing is past its retention yet");
    app.clock.advance_millis(day + 15 * 60 * 1000 + 1);
    let purged = state.sca.purge(&retention).await.unwrap();
    assert_eq!((purged.sessions, purged.sms), (1, 1));
    assert!(app
        .store
        .session_by_token(&passgate::token::Secret::parse(&unused).unwrap().hash(), passgate::store::Lookup::Settled)
        .await
        .unwrap()
        .is_none());
    assert_eq!(app.call(Method::GET, "/v2/sepa/transfers", &[], None).await.body["transfers"].as_array().unwrap().len(), 1);
    assert_eq!(app.store.audit_of_session(&unused_id).await.unwrap().len(), 1, "the audit log outlives the session");
    app.clock.advance_millis(30 * day);
    state.sca.purge(&retention).await.unwrap();
    assert!(app.store.audit_of_session(&unused_id).await.unwrap().is_empty());
}

#[tokio::test]
async fn passgate_evidence_prints_the_evidence_and_says_whether_it_holds() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    app.register_passkey(&app.latest_link().await, &mut authenticator).await;
    let token = app.start_transfer(&transfer_body("75.00"), "passkey").await;
    app.authenticate_passkey(&app.latest_link().await, &mut authenticator).await;
    let session = app.session_id(&token).await;

    let run = |session: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_passgate"))
            .args(["evidence", session])
            .env("DATABASE_URL", &app.database_url)
            .env_remove("PASSGATE_MODE")
            .env_remove("PASSGATE_BIND")
            .env_remove("PASSGATE_ORIGIN")
            .output()
            .unwrap()
    };
    let out = run(&session);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["verification"]["result"], "verified");
    assert_eq!(printed["verification"]["holds"], true);
    assert_eq!(printed["evidence"]["summary"]["amount"], "75.00");
    assert_eq!(printed["audit"].as_array().unwrap().len(), 2);

    let unknown = run("no-such-session");
    assert!(!unknown.status.success(), "no evidence is not evidence that holds");
    let printed: serde_json::Value = serde_json::from_slice(&unknown.stdout).unwrap();
    assert_eq!(printed["verification"]["result"], "no_evidence");
}
