use axum::http::Method;
use serde_json::json;

use crate::helpers::{soft_passkey, spawn_app, transfer_body};

#[tokio::test]
async fn first_passkey_is_created_from_the_sms_link_then_approves_the_transfer_with_an_assertion() {
    let app = spawn_app().await;
    let body = transfer_body("1200.00");
    let first = app.transfer(&body, "passkey", None).await;
    assert_eq!((first.status.as_u16(), first.code()), (428, "sca_required"));
    assert_eq!(first.body["message"], "Passkey verification required");
    let token = first.body["sca_session_token"].as_str().unwrap().to_owned();

    // The SMS carries a link whose secret is not the session token.
    let link = app.latest_link().await;
    assert_ne!(link, token);
    let outbox = app.call(Method::GET, "/dev/sms", &[], None).await;
    assert_eq!(outbox.body[0]["to"], app.creds.user_phone.as_str());
    assert!(outbox.body[0]["body"].as_str().unwrap().contains(&format!("http://localhost:8080/sca/{link}")));

    let view = app.approval_view(&link).await;
    assert_eq!(view.status, 200);
    assert_eq!(view.body["partner_name"], "Demo Accounting App");
    assert_eq!(view.body["action"]["amount"], "1,200.00");
    assert_eq!(view.body["action"]["iban"], "FR76 3000 6000 0112 3456 7890 189");
    assert_eq!(view.body["state"], "waiting");
    assert_eq!(view.body["has_passkey"], false);
    assert!(view.body["seconds_left"].as_u64().unwrap() > 890);

    let mut authenticator = soft_passkey();
    let approved = app.register_and_approve(&link, &mut authenticator).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(approved.body["state"], "allowed");

    assert_eq!(app.poll(&token).await.body["result"], "allow");
    let decided = app.approval_view(&link).await;
    assert_eq!(
        (decided.body["state"].as_str(), &decided.body["action"]),
        (Some("allowed"), &serde_json::Value::Null),
        "no summary once decided"
    );
    let replay = app.transfer(&body, "passkey", Some(&token)).await;
    assert_eq!(replay.status, 201, "{:?}", replay.body);
    let again = app.transfer(&body, "passkey", Some(&token)).await;
    assert_eq!(again.code(), "sca_session_consumed");
    assert_eq!(app.approval_view(&link).await.body["state"], "used");
}

#[tokio::test]
async fn a_second_transfer_is_approved_with_the_existing_passkey_and_its_counter_is_kept() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    let body = transfer_body("1.00");
    app.start_transfer(&body, "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_passkey(&link, &mut authenticator).await.status, 200);

    let body = transfer_body("2.00");
    let token = app.start_transfer(&body, "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.approval_view(&link).await.body["has_passkey"], true);
    // A link may not enrol a second passkey beside the first.
    let second = app.register_start(&link).await;
    assert_eq!((second.status.as_u16(), second.code()), (409, "passkey_exists"));

    let approved = app.authenticate_passkey(&link, &mut authenticator).await;
    assert_eq!(approved.status, 200, "{:?}", approved.body);
    assert_eq!(app.transfer(&body, "passkey", Some(&token)).await.status, 201);

    let stored = app.store.passkeys_of_user(&app.user_id().await).await.unwrap();
    assert_eq!(stored.len(), 1);
    let json = serde_json::to_value(&stored[0].passkey).unwrap();
    assert!(json["cred"]["counter"].as_u64().unwrap() >= 1, "counter persisted: {json}");
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let link = app.latest_link().await;
    app.register_passkey(&link, &mut authenticator).await;

    app.start_transfer(&transfer_body("3.00"), "passkey").await;
    let link = app.latest_link().await;
    let assertion = app.passkey_assertion(&link, &mut authenticator).await;
    let tampered = {
        let mut a = assertion.clone();
        let sig = a["response"]["signature"].as_str().unwrap().to_owned();
        let (first, rest) = sig.split_at(1);
        let flipped = format!("{}{rest}", if first == "A" { "B" } else { "A" });
        a["response"]["signature"] = json!(flipped);
        a
    };
    let refused = app.approval_post(&link, "passkey/authenticate/finish", Some(tampered)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "passkey_rejected"), "{:?}", refused.body);
    assert!(refused.body["message"].as_str().unwrap().len() > 10);
    assert_eq!(app.approval_view(&link).await.body["state"], "waiting");

    // The challenge was taken by the failed attempt: the genuine answer to it
    // cannot be used afterwards either.
    let late = app.approval_post(&link, "passkey/authenticate/finish", Some(assertion)).await;
    assert_eq!((late.status.as_u16(), late.code()), (409, "ceremony_not_started"));
    assert_eq!(app.approval_view(&link).await.body["state"], "waiting");
}

#[tokio::test]
async fn garbage_in_place_of_a_webauthn_answer_is_a_clear_4xx() {
    let app = spawn_app().await;
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let link = app.latest_link().await;
    app.register_start(&link).await;
    let reply = app.approval_post(&link, "passkey/register/finish", Some(json!({"id": "x"}))).await;
    assert_eq!((reply.status.as_u16(), reply.code()), (422, "validation_failed"), "{:?}", reply.body);
    assert_eq!(app.approval_view(&link).await.body["state"], "waiting");
}

/// A registration signs nothing of the approval: after `register/finish`
/// the passkey exists but the partner still reads `waiting` and its replay
/// is refused as pending; only an assertion of the new passkey, over a
/// fresh challenge bound to the action, allows the session.
#[tokio::test]
async fn a_first_passkey_alone_approves_nothing_until_its_assertion() {
    let app = spawn_app().await;
    let body = transfer_body("640.00");
    let token = app.start_transfer(&body, "passkey").await;
    let link = app.latest_link().await;
    let mut authenticator = soft_passkey();

    let enrolled = app.register_passkey(&link, &mut authenticator).await;
    assert_eq!((enrolled.status.as_u16(), &enrolled.body), (200, &json!({"state": "waiting"})));
    assert_eq!(app.store.passkeys_of_user(&app.user_id().await).await.unwrap().len(), 1);
    assert_eq!(app.poll(&token).await.body, json!({"result": "waiting", "canceled_at": null}));
    let early = app.transfer(&body, "passkey", Some(&token)).await;
    assert_eq!((early.status.as_u16(), early.code()), (412, "sca_session_pending"));
    // The page, reloaded, offers the new passkey; a second one is refused.
    let view = app.approval_view(&link).await;
    assert_eq!((view.body["state"].as_str(), view.body["has_passkey"].as_bool()), (Some("waiting"), Some(true)));
    assert_eq!(view.body["action"]["amount"], "640.00");
    let second = app.register_start(&link).await;
    assert_eq!((second.status.as_u16(), second.code()), (409, "passkey_exists"));
    let session = app.session_id(&token).await;
    assert!(app.store.evidence_of_session(&session).await.unwrap().is_none(), "a registration keeps no evidence of the approval");

    // One more touch: the assertion allows it.
    app.clock.advance_millis(1_000);
    let approved = app.authenticate_passkey(&link, &mut authenticator).await;
    assert_eq!((approved.status.as_u16(), &approved.body), (200, &json!({"state": "allowed"})));
    assert_eq!(app.poll(&token).await.body["result"], "allow");
    assert_eq!(app.transfer(&body, "passkey", Some(&token)).await.status, 201);

    let events = app.store.audit_of_session(&session).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["session.created", "password.accepted", "passkey.enrolled", "replay.refused", "session.decided"]);
    let stored = app.store.passkeys_of_user(&app.user_id().await).await.unwrap();
    assert_eq!(events[4].detail["by"], json!({"method": "passkey", "passkey_id": stored[0].id}), "decided by the new passkey's assertion");
}

/// One registration answer enrols once: the second finish, even a
/// concurrent one, finds its ceremony consumed. (A credential enrolled to
/// two users is refused by the store: see the store suite's
/// `a_credential_is_never_enrolled_to_two_users`.)
#[tokio::test]
async fn a_registration_answer_enrols_once() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    let token = app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let first_link = app.latest_link().await;
    let start = app.register_start(&first_link).await;
    let options = serde_json::from_value(start.body).unwrap();
    let answer = webauthn_authenticator_rs::WebauthnAuthenticator::do_registration(
        &mut authenticator,
        url::Url::parse(crate::helpers::ORIGIN).unwrap(),
        options,
    )
    .unwrap();
    let answer = serde_json::to_value(answer).unwrap();
    let (one, two) = tokio::join!(
        app.approval_post(&first_link, "passkey/register/finish", Some(answer.clone())),
        app.approval_post(&first_link, "passkey/register/finish", Some(answer.clone())),
    );
    let mut outcomes = [(one.status.as_u16(), one.code().to_owned()), (two.status.as_u16(), two.code().to_owned())];
    outcomes.sort();
    assert_eq!(outcomes[0].0, 200, "{outcomes:?}");
    assert_eq!(outcomes[1], (409, "ceremony_not_started".to_owned()), "{outcomes:?}");
    let again = app.approval_post(&first_link, "passkey/register/finish", Some(answer)).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "ceremony_not_started"));

    assert_eq!(app.store.passkeys_of_user(&app.user_id().await).await.unwrap().len(), 1);
    let session = app.session_id(&token).await;
    let events = app.store.audit_of_session(&session).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "passkey.enrolled").count(), 1);
    assert_eq!(app.approval_view(&first_link).await.body["state"], "waiting");
}

#[tokio::test]
async fn a_finish_without_a_start_and_an_approval_without_a_passkey_say_why() {
    let app = spawn_app().await;
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let link = app.latest_link().await;
    let no_passkey = app.approval_post(&link, "passkey/authenticate/start", None).await;
    assert_eq!((no_passkey.status.as_u16(), no_passkey.code()), (409, "no_passkey"));
    let mut authenticator = soft_passkey();
    let elsewhere = {
        // A genuine answer to a challenge this link never issued.
        let webauthn =
            webauthn_rs::WebauthnBuilder::new("localhost", &url::Url::parse(crate::helpers::ORIGIN).unwrap()).unwrap().build().unwrap();
        let (options, _) = webauthn.start_passkey_registration(uuid::Uuid::new_v4(), "u", "U", None).unwrap();
        let answer = webauthn_authenticator_rs::WebauthnAuthenticator::do_registration(
            &mut authenticator,
            url::Url::parse(crate::helpers::ORIGIN).unwrap(),
            options,
        )
        .unwrap();
        serde_json::to_value(answer).unwrap()
    };
    let not_started = app.approval_post(&link, "passkey/register/finish", Some(elsewhere)).await;
    assert_eq!((not_started.status.as_u16(), not_started.code()), (409, "ceremony_not_started"));
    assert_eq!(app.approval_view(&link).await.body["state"], "waiting");
}

#[tokio::test]
async fn the_user_can_deny_from_the_link() {
    let app = spawn_app().await;
    let body = transfer_body("9.99");
    let token = app.start_transfer(&body, "passkey").await;
    let link = app.latest_link().await;
    let denied = app.approval_post(&link, "deny", None).await;
    assert_eq!(denied.body["state"], "denied");
    assert_eq!(app.poll(&token).await.body["result"], "deny");
    assert_eq!(app.transfer(&body, "passkey", Some(&token)).await.code(), "sca_session_denied");
    // Once denied, the link offers nothing more.
    for closed in [app.register_start(&link).await, app.approval_post(&link, "deny", None).await] {
        assert_eq!((closed.status.as_u16(), closed.code()), (409, "approval_closed"), "{closed:?}");
    }
}

#[tokio::test]
async fn unknown_and_expired_links_say_so() {
    let app = spawn_app().await;
    let unknown = app.approval_view(&"A".repeat(43)).await;
    assert_eq!((unknown.status.as_u16(), unknown.code()), (404, "not_found"));
    let malformed = app.approval_view("not-a-link").await;
    assert_eq!((malformed.status.as_u16(), malformed.code()), (404, "not_found"));

    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let link = app.latest_link().await;
    app.clock.advance_millis(15 * 60 * 1000);
    let view = app.approval_view(&link).await;
    assert_eq!((view.status.as_u16(), view.body["state"].as_str()), (200, Some("expired")));
    let late = app.register_start(&link).await;
    assert_eq!((late.status.as_u16(), late.code()), (409, "approval_closed"));
}

/// An assertion approves once: answered again, its ceremony is gone. (The
/// race of two finishes at once is the store suite's
/// `a_verified_ceremony_is_consumed_once_under_concurrent_finishes`.)
#[tokio::test]
async fn an_assertion_answered_twice_approves_once() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    let link = app.latest_link().await;
    app.register_passkey(&link, &mut authenticator).await;

    app.start_transfer(&transfer_body("4.00"), "passkey").await;
    let link = app.latest_link().await;
    let assertion = app.passkey_assertion(&link, &mut authenticator).await;
    let first = app.approval_post(&link, "passkey/authenticate/finish", Some(assertion.clone())).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    let second = app.approval_post(&link, "passkey/authenticate/finish", Some(assertion)).await;
    assert_eq!((second.status.as_u16(), second.code()), (409, "approval_closed"));
}

/// Two approvals in flight with one passkey: both ceremonies saved the
/// counter as it was at their start. The assertion signed later (higher
/// counter) lands first; the earlier one, whose counter is now behind the
/// stored one, must be refused instead of writing the counter back.
#[tokio::test]
async fn an_assertion_whose_counter_fell_behind_is_refused_and_the_counter_never_moves_back() {
    let app = spawn_app().await;
    let mut authenticator = soft_passkey();
    app.start_transfer(&transfer_body("1.00"), "passkey").await;
    assert_eq!(app.register_passkey(&app.latest_link().await, &mut authenticator).await.status, 200);

    app.start_transfer(&transfer_body("2.00"), "passkey").await;
    let first = app.latest_link().await;
    app.start_transfer(&transfer_body("3.00"), "passkey").await;
    let second = app.latest_link().await;
    let earlier = app.passkey_assertion(&first, &mut authenticator).await;
    let later = app.passkey_assertion(&second, &mut authenticator).await;
    assert_eq!(app.approval_post(&second, "passkey/authenticate/finish", Some(later)).await.status, 200);
    let counter = |app: &crate::helpers::TestApp| {
        let app = app.clone();
        async move { app.store.passkeys_of_user(&app.user_id().await).await.unwrap()[0].sign_count }
    };
    let stored = counter(&app).await;
    assert!(stored >= 2, "{stored}");

    let refused = app.approval_post(&first, "passkey/authenticate/finish", Some(earlier)).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (400, "passkey_rejected"), "{:?}", refused.body);
    assert_eq!(counter(&app).await, stored, "the counter never moves back");
    assert_eq!(app.approval_view(&first).await.body["state"], "waiting");
    // A fresh assertion (a higher counter) approves it.
    assert_eq!(app.authenticate_passkey(&first, &mut authenticator).await.status, 200);
}
