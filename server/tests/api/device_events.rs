//! The paired phone's live list (`GET /device/api/events`, issue 26):
//! server-sent events, each the whole list of what waits for the phone's
//! user. An approval opened on one instance reaches a phone listening on
//! another within a second, and leaves it as soon as it is decided or
//! runs out; a phone that reconnects with the last id it saw loses
//! nothing; an unpaired phone's stream ends at once.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::helpers::{spawn_app, transfer_body, TestApp, PHONE_COOKIE};
use crate::pairing::paired_phone;

/// The acceptance's bound: a change on any instance reaches the phone
/// within a second.
const WITHIN: Duration = Duration::from_secs(1);

/// One open event stream, read as a browser's `EventSource` would.
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, phone: &str, last_event_id: Option<&str>) -> Events {
        let mut request =
            Request::builder().method(Method::GET).uri("/device/api/events").header("cookie", format!("{PHONE_COOKIE}={phone}"));
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = app.router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { body: response.into_body(), buffer: String::new() }
    }

    /// The next `approvals` event within `within`: its id and its list;
    /// `None` if the stream ended.
    async fn next(&mut self, within: Duration) -> Option<(String, Vec<Value>)> {
        tokio::time::timeout(within, async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned);
                    if field("event: ").as_deref() == Some("approvals") {
                        let list: Value = serde_json::from_str(&field("data: ").unwrap()).unwrap();
                        return Some((field("id: ").unwrap(), list.as_array().unwrap().clone()));
                    }
                }
                let frame = self.body.frame().await?.unwrap();
                if let Ok(data) = frame.into_data() {
                    self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                }
            }
        })
        .await
        .expect("an event within the time allowed")
    }
}

fn ids(list: &[Value]) -> Vec<&str> {
    list.iter().map(|a| a["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn an_approval_opened_on_one_instance_reaches_a_phone_listening_on_another_within_a_second() {
    let a = spawn_app().await;
    let b = a.restart().await;
    let mut phone = paired_phone(&a).await;
    let credential = phone.phone.clone().unwrap();
    let mut events = Events::open(&b, &credential, None).await;
    let (_, first) = events.next(WITHIN).await.unwrap();
    assert!(first.is_empty(), "nothing waits yet: {first:?}");

    let challenged = a.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("42.00"))).await;
    assert_eq!(challenged.status, 428);
    let session_id = a.session_id(challenged.body["sca_session_token"].as_str().unwrap()).await;
    let (_, listed) = events.next(WITHIN).await.unwrap();
    assert_eq!(ids(&listed), [session_id.as_str()], "it appears on the other instance");
    assert_eq!(listed[0]["action"]["amount"], "42.00");

    // Denied from the phone through instance A: it leaves B's stream.
    let denied = phone.post(&format!("/device/api/approvals/{session_id}/deny"), None).await;
    assert_eq!(denied.status, 200, "{:?}", denied.body);
    let (_, listed) = events.next(WITHIN).await.unwrap();
    assert!(listed.is_empty(), "decided: {listed:?}");
}

#[tokio::test]
async fn a_reconnected_phone_loses_nothing_and_an_expired_approval_leaves_its_list() {
    let app = spawn_app().await;
    let phone = paired_phone(&app).await;
    let credential = phone.phone.clone().unwrap();
    let (empty_version, _) = Events::open(&app, &credential, None).await.next(WITHIN).await.unwrap();

    // Opened while the phone was away.
    let challenged = app.call(Method::POST, "/v2/sepa/transfers", &[], Some(&transfer_body("42.00"))).await;
    let session_id = app.session_id(challenged.body["sca_session_token"].as_str().unwrap()).await;
    let mut events = Events::open(&app, &credential, Some(&empty_version)).await;
    let (version, listed) = events.next(WITHIN).await.unwrap();
    assert_eq!(ids(&listed), [session_id.as_str()], "sent at once on reconnecting");
    assert_ne!(version, empty_version);
    drop(events);

    // Reconnecting with the latest id sends nothing until the list changes:
    // the first event is the expiry, not the list the phone already has.
    let mut events = Events::open(&app, &credential, Some(&version)).await;
    app.clock.advance_millis(15 * 60_000);
    let (_, listed) = events.next(WITHIN).await.unwrap();
    assert!(listed.is_empty(), "ran out: {listed:?}");
}

#[tokio::test]
async fn an_unpaired_phones_stream_ends_and_it_gets_no_other() {
    let app = spawn_app().await;
    let mut phone = paired_phone(&app).await;
    let credential = phone.phone.clone().unwrap();
    let mut events = Events::open(&app, &credential, None).await;
    events.next(WITHIN).await.unwrap();
    assert_eq!(phone.request(Method::DELETE, "/device/api/phone", None, &[]).await.status, 204);
    assert_eq!(events.next(WITHIN).await, None, "the stream ends");
    let reply = phone.get("/device/api/events").await;
    assert_eq!((reply.status.as_u16(), reply.code()), (401, "phone_not_paired"));
}
