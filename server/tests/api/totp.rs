//! The authenticator app (TOTP): set-up with a QR code and the key in
//! text, confirmation with a code, recovery codes shown once; the second
//! step of a sign-in; each code accepted once (concurrent sign-ins too),
//! one step of tolerance, five wrong codes lock the app for a while.

use passgate::account::totp::TotpKey;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Browser, TestApp};

const STEP: i64 = 30_000;

/// A signed-in browser with a confirmed app: (its key, its recovery codes).
async fn with_app(app: &TestApp, browser: &mut Browser<'_>) -> (TotpKey, Vec<String>) {
    browser.sign_in_as_user().await;
    browser.stepped_up().await;
    let setup = browser.post("/api/account/totp/setup", None).await;
    assert_eq!(setup.status, 200, "{:?}", setup.body);
    let key = TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let confirmed = browser.post("/api/account/totp/confirm", Some(json!({"code": code(app, &key, 0)}))).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let codes = confirmed.body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    (key, codes)
}

/// The key's code `steps` steps from now.
fn code(app: &TestApp, key: &TotpKey, steps: i64) -> String {
    key.code_at(passgate::clock::Clock::now(&app.clock).plus_millis(steps * STEP)).unwrap()
}

/// Signs in with the password: the second step is due.
async fn password_step(browser: &mut Browser<'_>) -> Value {
    let reply = browser.sign_in_as_user().await;
    assert_eq!(reply.body["stage"], "second_factor", "{:?}", reply.body);
    reply.body
}

#[tokio::test]
async fn setting_up_shows_a_qr_code_and_the_key_and_a_code_confirms_it() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.sign_in_as_user().await;
    browser.stepped_up().await;
    let setup = browser.post("/api/account/totp/setup", None).await;
    let secret = setup.body["secret"].as_str().unwrap();
    assert_eq!(secret.len(), 32, "160 bits in base32");
    let uri = setup.body["otpauth_uri"].as_str().unwrap();
    let account = app.creds.user_email.replace('@', "%40");
    assert_eq!(uri, format!("otpauth://totp/Passgate:{account}?secret={secret}&issuer=Passgate"));
    let svg = setup.body["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("<path"), "an SVG drawn by the server");

    // Kept sealed: the database never holds the key in clear.
    let user = app.user_id().await;
    let stored = app.store.totp_of_user(&user).await.unwrap().unwrap();
    assert!(stored.sealed_key.starts_with("v2.") && !stored.sealed_key.contains(secret), "{}", stored.sealed_key);
    assert_eq!(stored.confirmed_at, None);

    let key = TotpKey::from_base32(secret).unwrap();
    let wrong = browser.post("/api/account/totp/confirm", Some(json!({"code": code(&app, &key, 3)}))).await;
    assert_eq!((wrong.status.as_u16(), wrong.code()), (403, "totp_invalid"));
    assert!(wrong.body["message"].as_str().unwrap().contains("4 attempts left"), "{:?}", wrong.body);
    let confirmed = browser.post("/api/account/totp/confirm", Some(json!({"code": code(&app, &key, 0)}))).await;
    assert_eq!(confirmed.status, 200, "{:?}", confirmed.body);
    let codes = confirmed.body["recovery_codes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert!(app.store.totp_of_user(&user).await.unwrap().unwrap().confirmed_at.is_some());
    // A second set-up replaces the app; the first works until the new one's code.
    let again = browser.post("/api/account/totp/setup", None).await;
    assert_eq!((again.status.as_u16(), &again.body["replacing"]), (200, &json!(true)), "{:?}", again.body);
    assert!(app.store.totp_of_user(&user).await.unwrap().unwrap().confirmed_at.is_some());
    let events: Vec<String> = app.audit_of_user(&user, 10).await.into_iter().map(|e| e.kind).collect();
    assert!(events.contains(&"factor.added".to_owned()) && events.contains(&"factor.refused".to_owned()), "{events:?}");
}

#[tokio::test]
async fn with_an_app_sign_in_takes_a_code_under_a_new_session_secret() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (key, _) = with_app(&app, &mut browser).await;
    assert_eq!(browser.post("/api/account/sign-out", None).await.status, 204);

    let step = password_step(&mut browser).await;
    assert_eq!(step["second_factors"], json!(["totp", "recovery_code"]));
    let half_signed_in = browser.cookie.clone();
    // The code that confirmed the app was used: it cannot sign in.
    let reused = browser.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await;
    assert_eq!(reused.code(), "totp_code_used");
    app.clock.advance_millis(STEP);
    let signed_in = browser.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await;
    assert_eq!(signed_in.status, 200, "{:?}", signed_in.body);
    assert_eq!((signed_in.body["stage"].as_str(), signed_in.body["second_factors"].as_array().map(Vec::len)), (Some("signed_in"), Some(0)));
    assert_ne!(browser.cookie, half_signed_in, "a new secret for the new stage");
    let mut old = Browser::new(&app);
    old.cookie = half_signed_in;
    assert_eq!(old.get("/api/account/session").await.code(), "session_ended");
    assert_eq!(browser.get("/api/account/session").await.body["stage"], "signed_in");
    let again = browser.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 1)}))).await;
    assert_eq!((again.status.as_u16(), again.code()), (409, "already_signed_in"));
}

#[tokio::test]
async fn a_code_is_good_one_step_either_side_and_once() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (key, _) = with_app(&app, &mut browser).await;
    app.clock.advance_millis(10 * STEP);
    for (steps, accepted) in [(-2, false), (2, false), (-1, true)] {
        let mut other = Browser::new(&app);
        password_step(&mut other).await;
        let reply = other.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, steps)}))).await;
        assert_eq!(reply.status == 200, accepted, "{steps} steps: {:?}", reply.body);
    }
    // The previous step's code was used, and so cannot be again (said as
    // such, no attempt spent); the current step's code still works.
    let mut late = Browser::new(&app);
    password_step(&mut late).await;
    let used = late.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, -1)}))).await;
    assert_eq!((used.status.as_u16(), used.code()), (409, "totp_code_used"));
    assert!(used.body["message"].as_str().unwrap().contains("wait for the next one"), "{:?}", used.body);
    assert_eq!(late.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await.status, 200);
}

#[tokio::test]
async fn a_code_just_used_is_said_so_and_spends_no_attempt() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (key, _) = with_app(&app, &mut browser).await;
    app.clock.advance_millis(STEP);
    let now = code(&app, &key, 0);
    let mut first = Browser::new(&app);
    password_step(&mut first).await;
    assert_eq!(first.post("/api/account/sign-in/totp", Some(json!({"code": now}))).await.status, 200);
    // Signing in again within the same 30 seconds with the same code.
    let mut again = Browser::new(&app);
    password_step(&mut again).await;
    for _ in 0..6 {
        assert_eq!(again.post("/api/account/sign-in/totp", Some(json!({"code": now}))).await.code(), "totp_code_used");
    }
    let wrong = if now == "000000" { "111111" } else { "000000" };
    let refused = again.post("/api/account/sign-in/totp", Some(json!({"code": wrong}))).await;
    assert!(refused.body["message"].as_str().unwrap().contains("4 attempts left"), "no attempt was spent: {:?}", refused.body);
    app.clock.advance_millis(STEP);
    assert_eq!(again.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await.status, 200);
}

#[tokio::test]
async fn two_concurrent_sign_ins_cannot_both_use_one_code() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (key, _) = with_app(&app, &mut browser).await;
    app.clock.advance_millis(STEP);
    let mut browsers = Vec::new();
    for _ in 0..6 {
        let mut other = Browser::new(&app);
        password_step(&mut other).await;
        browsers.push((other.cookie.clone(), other.csrf.clone()));
    }
    let the_code = code(&app, &key, 0);
    let attempts = browsers.into_iter().map(|(cookie, csrf)| {
        let (app, the_code) = (app.clone(), the_code.clone());
        tokio::spawn(async move {
            let mut browser = Browser::new(&app);
            (browser.cookie, browser.csrf) = (cookie, csrf);
            let reply = browser.post("/api/account/sign-in/totp", Some(json!({"code": the_code}))).await;
            (reply.status.as_u16(), reply.code().to_owned())
        })
    });
    let answers: Vec<(u16, String)> = futures::future::join_all(attempts).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 1, "{answers:?}");
    // The others were refused: a wrong code (403: it lost the race inside
    // the store), a code just used (409: it came after the winner), or,
    // when five attempts were in flight at once, the lock that the fifth
    // sets (429).
    let expected = [(200, ""), (403, "totp_invalid"), (409, "totp_code_used"), (429, "totp_locked")];
    assert!(answers.iter().all(|(s, c)| expected.contains(&(*s, c.as_str()))), "{answers:?}");
}

#[tokio::test]
async fn five_wrong_codes_lock_the_app_for_fifteen_minutes() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (key, _) = with_app(&app, &mut browser).await;
    app.clock.advance_millis(STEP);
    password_step(&mut browser).await;
    let wrong = code(&app, &key, 5);
    for left in (1..=4).rev() {
        let reply = browser.post("/api/account/sign-in/totp", Some(json!({"code": wrong}))).await;
        assert!(reply.body["message"].as_str().unwrap().contains(&format!("{left} attempts left")), "{:?}", reply.body);
    }
    let locked = browser.post("/api/account/sign-in/totp", Some(json!({"code": wrong}))).await;
    assert_eq!((locked.status.as_u16(), locked.code()), (429, "totp_locked"));
    assert_eq!(locked.headers["retry-after"], "900");
    let told = app.sent.last_body().unwrap();
    assert!(told.contains("5 wrong codes were entered for your authenticator app; it is locked for 15 minutes"), "{told}");
    // Even the right code waits. (The keep-alives stand for a user who
    // stays on the page: the session itself ends after 5 idle minutes.)
    let right = browser.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await;
    assert_eq!(right.code(), "totp_locked");
    app.clock.advance_millis(4 * 60_000);
    browser.post("/api/account/session/keep-alive", None).await;
    app.clock.advance_millis(4 * 60_000);
    browser.post("/api/account/session/keep-alive", None).await;
    app.clock.advance_millis(4 * 60_000);
    browser.post("/api/account/session/keep-alive", None).await;
    app.clock.advance_millis(3 * 60_000);
    let unlocked = browser.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await;
    assert_eq!(unlocked.status, 200, "{:?}", unlocked.body);
}

#[tokio::test]
async fn a_recovery_code_signs_in_once() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (_, codes) = with_app(&app, &mut browser).await;
    browser.post("/api/account/sign-out", None).await;
    password_step(&mut browser).await;
    let typed = codes[3].to_lowercase().replace('-', " ");
    let used = browser.post("/api/account/sign-in/recovery-code", Some(json!({"code": typed}))).await;
    assert_eq!(used.status, 200, "{:?}", used.body);
    browser.post("/api/account/sign-out", None).await;
    password_step(&mut browser).await;
    let again = browser.post("/api/account/sign-in/recovery-code", Some(json!({"code": codes[3]}))).await;
    assert_eq!((again.status.as_u16(), again.code()), (403, "totp_invalid"));
    assert_eq!(app.store.recovery_codes_left(&app.user_id().await).await.unwrap(), 9);
}

#[tokio::test]
async fn the_password_step_is_logged_as_such_and_signed_in_once_when_complete() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let (key, _) = with_app(&app, &mut browser).await;
    let user_id = app.user_id().await;
    let since = app.audit_of_user(&user_id, 100).await.len();
    // Someone with the password but not the app: no "signed in".
    let mut stranger = Browser::new(&app);
    password_step(&mut stranger).await;
    let wrong = if code(&app, &key, 0) == "000000" { "111111" } else { "000000" };
    stranger.post("/api/account/sign-in/totp", Some(json!({"code": wrong}))).await;
    // The user, both steps.
    let mut user = Browser::new(&app);
    password_step(&mut user).await;
    app.clock.advance_millis(STEP);
    assert_eq!(user.post("/api/account/sign-in/totp", Some(json!({"code": code(&app, &key, 0)}))).await.status, 200);
    let events = app.audit_of_user(&user_id, 100).await;
    let kinds: Vec<&str> = events[..events.len() - since].iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["account.password_step", "factor.refused", "account.password_step", "factor.used", "account.signed_in"],
        "oldest first"
    );
}
