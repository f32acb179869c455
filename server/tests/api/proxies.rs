//! Behind a reverse proxy (`PASSGATE_TRUSTED_PROXIES`): the client's
//! address is the one a trusted proxy names, for per-client limits and the
//! audit log; from anyone else, `X-Forwarded-For` is ignored.
//!
//! The in-process router is given the TCP peer as the accept loop gives it
//! (`ConnectInfo`, see `passgate::serve`; `slow_clients` checks that loop
//! over real sockets): here, a proxy on 127.0.0.1.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use passgate::config::{Config, Mode};
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, Browser, TestApp};

/// The app as seen through a connection from `127.0.0.1`.
fn behind_loopback(mut app: TestApp) -> TestApp {
    let peer: SocketAddr = "127.0.0.1:54321".parse().unwrap();
    app.router = app.router.layer(axum::Extension(ConnectInfo(peer)));
    app
}

fn trust_loopback(config: &mut Config) {
    config.trusted_proxies = passgate::http::client_addr::parse_networks("127.0.0.1/32").unwrap();
}

async fn sign_in_from(browser: &mut Browser<'_>, header: (&str, &str), email: &str, password: &str) -> crate::helpers::Reply {
    let body = json!({"email": email, "password": password});
    browser.request(axum::http::Method::POST, "/api/account/sign-in", Some(body), &[header]).await
}

/// The user's newest audit row's address.
async fn newest_client_ip(app: &TestApp) -> Option<String> {
    let rows = app.audit_of_user(&app.user_id().await, 1).await;
    assert_eq!(rows[0].kind, shared::audit_kind::SIGN_IN_REFUSED, "{rows:?}");
    rows[0].client_ip.clone()
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let app = behind_loopback(spawn_app().await);
    let email = app.creds.user_email.clone();
    let mut browser = Browser::new(&app);
    let reply = sign_in_from(&mut browser, ("x-forwarded-for", "203.0.113.7"), &email, "a wrong guess").await;
    assert_eq!(reply.code(), "sign_in_refused", "{:?}", reply.body);
    assert_eq!(newest_client_ip(&app).await.as_deref(), Some("127.0.0.1"), "the peer, not what it claims");
    // Nor does it spread a client's guesses over made-up addresses.
    for i in 0..19 {
        let forged = format!("198.51.100.{i}");
        let reply = sign_in_from(&mut browser, ("x-forwarded-for", &forged), &format!("guess{i}@demo.passgate.test"), "nope").await;
        assert_eq!(reply.code(), "sign_in_refused", "{i}");
    }
    let reply = sign_in_from(&mut browser, ("x-forwarded-for", "198.51.100.99"), "guess@demo.passgate.test", "nope").await;
    assert_eq!((reply.status.as_u16(), reply.code()), (429, "sign_in_slowed"), "{:?}", reply.body);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_is_throttled_and_audited_apart() {
    let app = behind_loopback(spawn_app_with(Mode::Sandbox, trust_loopback).await);
    let mut browser = Browser::new(&app);
    // One client behind the proxy guesses across accounts until slowed...
    let guesser = ("x-forwarded-for", "192.0.2.66, 198.51.100.1");
    for i in 0..20 {
        let reply = sign_in_from(&mut browser, guesser, &format!("guess{i}@demo.passgate.test"), "wrong password").await;
        assert_eq!(reply.code(), "sign_in_refused", "{i}: {:?}", reply.body);
    }
    let slowed = sign_in_from(&mut browser, guesser, "guess@demo.passgate.test", "wrong password").await;
    assert_eq!((slowed.status.as_u16(), slowed.code()), (429, "sign_in_slowed"), "{:?}", slowed.body);
    // (what it claims left of the proxy's hop changes nothing)
    let spoofed = ("x-forwarded-for", "192.0.2.67, 198.51.100.1");
    assert_eq!(sign_in_from(&mut browser, spoofed, "guess@demo.passgate.test", "x").await.code(), "sign_in_slowed");

    // ...which slows no other client behind the same proxy.
    let (email, password) = (app.creds.user_email.clone(), app.creds.user_password.clone());
    let other = ("x-forwarded-for", "198.51.100.2");
    assert_eq!(sign_in_from(&mut browser, other, &email, "a wrong guess").await.code(), "sign_in_refused");
    assert_eq!(newest_client_ip(&app).await.as_deref(), Some("198.51.100.2"), "the forwarded client, not the proxy");
    let reply = sign_in_from(&mut Browser::new(&app), other, &email, &password).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    // The standard header, with a quoted IPv6 address and port: the audit
    // log keeps the whole address.
    let forwarded = ("forwarded", r#"for="[2001:db8:1:2::1]:4711";proto=https"#);
    assert_eq!(sign_in_from(&mut Browser::new(&app), forwarded, &email, "a wrong guess").await.code(), "sign_in_refused");
    assert_eq!(newest_client_ip(&app).await.as_deref(), Some("2001:db8:1:2::1"));
}

#[tokio::test]
async fn an_ipv6_client_is_throttled_by_its_64() {
    let app = behind_loopback(spawn_app_with(Mode::Sandbox, trust_loopback).await);
    let mut browser = Browser::new(&app);
    // Every guess from a fresh address of one /64: one client still.
    for i in 0..20 {
        let from = format!("2001:db8:1:2::{i:x}");
        let reply = sign_in_from(&mut browser, ("x-forwarded-for", &from), &format!("guess{i}@demo.passgate.test"), "nope").await;
        assert_eq!(reply.code(), "sign_in_refused", "{i}: {:?}", reply.body);
    }
    let same_64 = ("x-forwarded-for", "2001:db8:1:2:ffff::1");
    assert_eq!(sign_in_from(&mut browser, same_64, "guess@demo.passgate.test", "nope").await.code(), "sign_in_slowed");
    let next_64 = ("x-forwarded-for", "2001:db8:1:3::1");
    assert_eq!(sign_in_from(&mut browser, next_64, "guess@demo.passgate.test", "nope").await.code(), "sign_in_refused");
}
