//! Trusted browsers (seed 000): after a sign-in with two factors the user
//! may trust the browser for 90 days; the password alone then signs in on
//! it, on no other browser and for no other user; listed, revocable.

use axum::http::Method;
use passgate::clock::Clock;
use serde_json::json;

use crate::helpers::{spawn_app, two_factor_sign_in, user_with_app, Browser};

const DAY: i64 = 24 * 60 * 60 * 1000;

#[tokio::test]
async fn a_trusted_browser_signs_in_with_the_password_alone_and_no_other_does() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut phone = Browser::new(&app);
    two_factor_sign_in(&app, &mut phone, &key, true).await;
    assert!(phone.trusted.is_some(), "the trust's cookie");

    phone.post("/api/account/sign-out", None).await;
    assert_eq!(phone.sign_in_as_user().await.body["stage"], "signed_in", "no second step on the trusted browser");
    let mut laptop = Browser::new(&app);
    assert_eq!(laptop.sign_in_as_user().await.body["stage"], "second_factor");
    // Another user's password with this browser's trust: nothing skipped.
    let mut admin_here = Browser::new(&app);
    admin_here.trusted = phone.trusted.clone();
    let admin = admin_here.sign_in(&app.creds.admin_email.clone(), &app.creds.admin_password.clone()).await;
    assert_eq!(admin.body["stage"], "signed_in", "the admin has no second factor anyway");
    let events: Vec<_> = app.audit_of_user(&app.user_id().await, 20).await;
    assert!(events.iter().any(|e| e.kind == "device.trusted"), "{events:?}");
    assert!(events.iter().any(|e| e.kind == "account.signed_in" && e.detail["via"] == "trusted_browser"));
}

#[tokio::test]
async fn the_trust_cookie_is_http_only_strict_and_lasts_ninety_days() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "second_factor");
    app.clock.advance_millis(30_000);
    let code = key.code_at(app.clock.now()).unwrap();
    let reply = browser.post("/api/account/sign-in/totp", Some(json!({"code": code, "trust_browser": true}))).await;
    let trust =
        reply.headers.get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with("passgate_trusted=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=7776000"] {
        assert!(trust.contains(flag), "{flag} in {trust}");
    }
    // Without asking, no trust.
    let mut other = Browser::new(&app);
    two_factor_sign_in(&app, &mut other, &key, false).await;
    assert!(other.trusted.is_none());
}

#[tokio::test]
async fn trust_ends_after_ninety_days() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let mut browser = Browser::new(&app);
    two_factor_sign_in(&app, &mut browser, &key, true).await;
    app.clock.advance_millis(89 * DAY);
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "signed_in");
    app.clock.advance_millis(DAY);
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "second_factor");
}

#[tokio::test]
async fn trusted_browsers_are_listed_and_revoked_one_by_one_or_all() {
    let app = spawn_app().await;
    let key = user_with_app(&app).await;
    let (mut phone, mut laptop) = (Browser::new(&app), Browser::new(&app));
    two_factor_sign_in(&app, &mut phone, &key, true).await;
    two_factor_sign_in(&app, &mut laptop, &key, true).await;
    let list = laptop.get("/api/account/trusted-browsers").await;
    assert_eq!(list.status, 200, "{:?}", list.body);
    let browsers = list.body.as_array().unwrap();
    assert_eq!(browsers.len(), 2);
    assert!(browsers.iter().all(|d| d["name"].is_string() && d["last_used_at"].is_string() && d["expires_at"].is_string()));

    // The laptop revokes the phone: the phone's password alone no longer signs in.
    let phone_id = browsers[1]["id"].as_str().unwrap();
    let path = format!("/api/account/trusted-browsers/{phone_id}");
    assert_eq!(laptop.request(Method::DELETE, &path, None, &[]).await.status, 204);
    let gone = laptop.request(Method::DELETE, &path, None, &[]).await;
    assert_eq!((gone.status.as_u16(), gone.code()), (404, "not_found"));
    assert_eq!(phone.sign_in_as_user().await.body["stage"], "second_factor");
    assert_eq!(laptop.sign_in_as_user().await.body["stage"], "signed_in");

    let all = laptop.request(Method::DELETE, "/api/account/trusted-browsers", None, &[]).await;
    assert_eq!(all.status, 204);
    assert!(laptop.trusted.is_none(), "the browser's own trust cookie is cleared");
    assert_eq!(laptop.get("/api/account/trusted-browsers").await.body, json!([]));
    assert_eq!(laptop.sign_in_as_user().await.body["stage"], "second_factor");
}
