//! Signing in to the account area: uniform refusals, slow-down without
//! lock-out, the session cookie and its rotation, five minutes of
//! inactivity, CSRF, signing out (here and everywhere), the second-factor
//! stage.

use axum::http::Method;
use serde_json::json;

use crate::helpers::{soft_passkey, spawn_app, spawn_app_with, transfer_body, Browser, TestApp, SESSION_COOKIE};

const MINUTE: i64 = 60_000;

/// The kinds of the user's audit events, newest first.
async fn events_of(app: &TestApp, user_id: &str) -> Vec<String> {
    app.audit_of_user(user_id, 50).await.into_iter().map(|e| e.kind).collect()
}

#[tokio::test]
async fn the_right_password_signs_in_with_a_strict_http_only_cookie() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let reply = browser.sign_in_as_user().await;
    assert_eq!(reply.body["stage"], "signed_in");
    assert_eq!(reply.body["user"]["email"], app.creds.user_email);
    assert_eq!(reply.body["user"]["role"], "member");
    assert_eq!((reply.body["idle_timeout_secs"].as_u64(), reply.body["expires_in_secs"].as_u64()), (Some(300), Some(300)));
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with(&format!("{SESSION_COOKIE}=")), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    // Plain http on loopback: a Secure cookie would not come back.
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(reply.headers["cache-control"], "no-store");

    let session = browser.get("/api/account/session").await;
    assert_eq!(session.status, 200, "{:?}", session.body);
    assert_eq!(session.body["user"]["id"], app.user_id().await);
    assert_eq!(session.body["csrf_token"], reply.body["csrf_token"]);
    assert_eq!(events_of(&app, &app.user_id().await).await, ["account.signed_in"]);
}

#[tokio::test]
async fn outside_loopback_the_cookie_is_secure_and_host_only() {
    let app = spawn_app_with(passgate::config::Mode::Production, |config| {
        config.origin = url::Url::parse("https://passgate.example").unwrap();
        config.rp_id = "passgate.example".into();
    })
    .await;
    let (email, password) = (app.creds.user_email.clone(), app.creds.user_password.clone());
    let reply = Browser::new(&app)
        .request(
            Method::POST,
            "/api/account/sign-in",
            Some(json!({"email": email, "password": password})),
            &[("origin", "https://passgate.example")],
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-passgate_session="), "{cookie}");
    assert!(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let wrong = browser.sign_in(&app.creds.user_email, "not the password at all").await;
    let unknown = browser.sign_in("nobody@demo.passgate.test", "not the password at all").await;
    let malformed = browser.sign_in("not an email", "not the password at all").await;
    for reply in [&wrong, &unknown, &malformed] {
        assert_eq!((reply.status.as_u16(), reply.code()), (401, "sign_in_refused"), "{:?}", reply.body);
        assert!(reply.headers.get("set-cookie").is_none());
    }
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, malformed.body);
    assert!(browser.cookie.is_none());
    // The account's own activity shows the failure (its owner and admins
    // know it exists); the answers above said nothing.
    assert_eq!(events_of(&app, &app.user_id().await).await, ["account.sign_in_refused"]);
    // The other user's password is not this one's.
    assert_eq!(browser.sign_in(&app.creds.user_email, &app.creds.admin_password.clone()).await.code(), "sign_in_refused");
}

#[tokio::test]
async fn failures_slow_an_account_down_and_a_right_password_is_not_counted() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (email, password) = (app.creds.user_email.clone(), app.creds.user_password.clone());
    for _ in 0..4 {
        assert_eq!(browser.sign_in(&email, "wrong password, again").await.code(), "sign_in_refused");
    }
    // A right password takes nothing from the allowance...
    assert_eq!(browser.sign_in(&email, &password).await.status, 200);
    // (its device cookie would give this browser a budget of its own: a
    // stranger's browser has none)
    browser.device = None;
    // ...so the fifth failure is still answered, and the sixth attempt waits.
    assert_eq!(browser.sign_in(&email, "wrong password, again").await.code(), "sign_in_refused");
    let slowed = browser.sign_in(&email, &password).await;
    assert_eq!((slowed.status.as_u16(), slowed.code()), (429, "sign_in_slowed"), "{:?}", slowed.body);
    let wait: i64 = slowed.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // The same answer for an unknown account: slowing down tells nothing either.
    for _ in 0..5 {
        browser.sign_in("nobody@demo.passgate.test", "wrong password, again").await;
    }
    assert_eq!(browser.sign_in("nobody@demo.passgate.test", "wrong password, again").await.code(), "sign_in_slowed");
    // Slowed, not locked: after the wait the right password works.
    app.clock.advance_millis(wait * 1_000);
    assert_eq!(browser.sign_in(&email, &password).await.status, 200);
}

#[tokio::test]
async fn failures_from_one_client_slow_it_down_across_accounts() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    for i in 0..20 {
        let reply = browser.sign_in(&format!("guess{i}@demo.passgate.test"), "wrong password, again").await;
        assert_eq!(reply.code(), "sign_in_refused", "{i}");
    }
    let slowed = browser.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    assert_eq!(slowed.code(), "sign_in_slowed");
    app.clock.advance_millis(5_000);
    assert_eq!(browser.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await.status, 200);
}

#[tokio::test]
async fn concurrent_guesses_get_no_more_than_the_allowance() {
    let app = spawn_app().await;
    let email = app.creds.user_email.clone();
    let guesses = (0..12).map(|i| {
        let (app, email) = (app.clone(), email.clone());
        tokio::spawn(async move { Browser::new(&app).sign_in(&email, &format!("wrong guess number {i}")).await.code().to_owned() })
    });
    let codes: Vec<String> = futures::future::join_all(guesses).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(codes.iter().filter(|c| *c == "sign_in_refused").count(), 5, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| *c == "sign_in_slowed").count(), 7, "{codes:?}");
}

#[tokio::test]
async fn each_sign_in_gets_a_new_secret_and_ends_the_old_one() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    let (first_cookie, first_csrf) = (browser.cookie.clone(), browser.csrf.clone());
    browser.sign_in_as_user().await;
    assert_ne!(browser.cookie, first_cookie);
    assert_ne!(browser.csrf, first_csrf);
    let mut old = Browser::new(&app);
    old.cookie = first_cookie;
    assert_eq!(old.get("/api/account/session").await.code(), "session_ended");
    assert_eq!(browser.get("/api/account/session").await.status, 200);
}

#[tokio::test]
async fn five_minutes_without_a_request_end_the_session_and_looking_is_not_a_request() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    // Activity keeps it: a request every 4 minutes 59 seconds.
    for _ in 0..3 {
        app.clock.advance_millis(5 * MINUTE - 1_000);
        let kept = browser.post("/api/account/session/keep-alive", None).await;
        assert_eq!(kept.status, 200, "{:?}", kept.body);
        assert_eq!(kept.body["expires_in_secs"], 300);
    }
    // The page's own checks count down without extending it.
    app.clock.advance_millis(4 * MINUTE);
    assert_eq!(browser.get("/api/account/session").await.body["expires_in_secs"], 60);
    app.clock.advance_millis(MINUTE);
    let ended = browser.get("/api/account/session").await;
    assert_eq!((ended.status.as_u16(), ended.code()), (401, "session_ended"));
    assert_eq!(ended.body["message"], "You were signed out after 5 minutes without activity", "the page says why");
    assert_eq!(browser.post("/api/account/session/keep-alive", None).await.code(), "session_ended");
}

#[tokio::test]
async fn a_state_changing_request_needs_our_origin_and_the_sessions_csrf_token() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (email, password) = (app.creds.user_email.clone(), app.creds.user_password.clone());
    let form = json!({"email": email, "password": password});
    // Sign-in from another site's page, or with no sign of where it came from.
    for headers in [vec![("origin", "https://evil.example")], vec![("origin", "null")], vec![("origin", "")]] {
        let refused = browser.request(Method::POST, "/api/account/sign-in", Some(form.clone()), &headers).await;
        assert_eq!((refused.status.as_u16(), refused.code()), (403, "csrf_refused"), "{headers:?}");
    }
    // No Origin but the browser's own word that it is same-origin.
    let fetched =
        browser.request(Method::POST, "/api/account/sign-in", Some(form), &[("origin", ""), ("sec-fetch-site", "same-origin")]).await;
    assert_eq!(fetched.status, 200, "{:?}", fetched.body);

    let missing = browser.request(Method::POST, "/api/account/session/keep-alive", None, &[("x-csrf-token", "")]).await;
    assert_eq!((missing.status.as_u16(), missing.code()), (403, "csrf_refused"));
    let mut other = Browser::new(&app);
    other.sign_in_as_user().await;
    let others_token = other.csrf.clone().unwrap();
    let foreign = browser.request(Method::POST, "/api/account/sign-out", None, &[("x-csrf-token", &others_token)]).await;
    assert_eq!(foreign.code(), "csrf_refused");
    let cross_site = browser.request(Method::POST, "/api/account/sign-out", None, &[("origin", "https://evil.example")]).await;
    assert_eq!(cross_site.code(), "csrf_refused");
    // Refused requests changed nothing: the session is still there.
    assert_eq!(browser.get("/api/account/session").await.status, 200);
    assert_eq!(browser.post("/api/account/session/keep-alive", None).await.status, 200);
}

#[tokio::test]
async fn signing_out_ends_this_session_and_everywhere_ends_them_all() {
    let app = spawn_app().await;
    let (mut phone, mut laptop, mut tablet) = (Browser::new(&app), Browser::new(&app), Browser::new(&app));
    for browser in [&mut phone, &mut laptop, &mut tablet] {
        browser.sign_in_as_user().await;
    }
    let mut admin = Browser::new(&app);
    admin.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;

    let out = phone.post("/api/account/sign-out", None).await;
    assert_eq!(out.status, 204);
    assert!(out.headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert!(phone.cookie.is_none());
    assert_eq!(laptop.get("/api/account/session").await.status, 200, "the other sessions stay");

    assert_eq!(laptop.post("/api/account/sign-out-everywhere", None).await.status, 204);
    for browser in [&mut laptop, &mut tablet] {
        assert_eq!(browser.get("/api/account/session").await.code(), "session_ended");
    }
    assert_eq!(admin.get("/api/account/session").await.status, 200, "another user's session stays");
    let user = app.user_id().await;
    let events = events_of(&app, &user).await;
    assert_eq!(events[..2], ["account.signed_out_everywhere", "account.signed_out"], "{events:?}");
}

#[tokio::test]
async fn with_a_passkey_the_password_alone_leaves_a_second_step() {
    let app = spawn_app().await;
    let _token = app.start_transfer(&transfer_body("12.00"), "passkey").await;
    let link = app.latest_link().await;
    assert_eq!(app.register_passkey(&link, &mut soft_passkey()).await.status, 200);

    let mut browser = Browser::new(&app);
    let reply = browser.sign_in_as_user().await;
    assert_eq!(reply.body["stage"], "second_factor");
    // Until the second step, nothing of the account is open.
    let refused = browser.post("/api/account/sign-out-everywhere", None).await;
    assert_eq!((refused.status.as_u16(), refused.code()), (403, "second_factor_required"));
    assert_eq!(browser.post("/api/account/sign-out", None).await.status, 204);
}

#[tokio::test]
async fn a_stranger_guessing_cannot_keep_the_owner_out_of_a_browser_they_signed_in_on() {
    let app = spawn_app().await;
    let (email, password) = (app.creds.user_email.clone(), app.creds.user_password.clone());
    let mut owner = Browser::new(&app);
    assert_eq!(owner.sign_in(&email, &password).await.status, 200);
    let device = owner.device.clone().expect("a device cookie at a successful sign-in");
    owner.post("/api/account/sign-out", None).await;
    // A stranger guesses until the account's shared budget is spent.
    let mut stranger = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(stranger.sign_in(&email, "a guess of the stranger").await.code(), "sign_in_refused");
    }
    assert_eq!(stranger.sign_in(&email, &password).await.code(), "sign_in_slowed", "even the right password waits there");
    let mut elsewhere = Browser::new(&app);
    assert_eq!(elsewhere.sign_in(&email, &password).await.code(), "sign_in_slowed", "a browser never signed in on shares it");
    // The owner's browser has a budget of its own.
    assert_eq!(owner.sign_in(&email, &password).await.status, 200);
    // The cookie is for this account only: another account's guesses
    // with it take the shared budget of that account.
    let mut borrowed = Browser::new(&app);
    borrowed.device = Some(device);
    for _ in 0..5 {
        borrowed.sign_in(&app.creds.admin_email.clone(), "a guess of the stranger").await;
    }
    assert_eq!(borrowed.sign_in(&app.creds.admin_email.clone(), "a guess").await.code(), "sign_in_slowed");
}
