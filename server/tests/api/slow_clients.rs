//! The accept loop against slow, idle and too many clients, over real TCP.

use std::net::SocketAddr;
use std::time::Duration;

use passgate::serve::{serve, ServeLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app, transfer_body, TestApp};

/// Generous bound for what should happen at once.
const PROMPTLY: Duration = Duration::from_secs(5);

async fn listening(app: &TestApp, limits: ServeLimits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app.router.clone(), limits, std::future::pending()));
    addr
}

fn limits(header_read_timeout_ms: u64, request_timeout_ms: u64, max_connections: usize) -> ServeLimits {
    ServeLimits {
        header_read_timeout: Duration::from_millis(header_read_timeout_ms),
        request_timeout: Duration::from_millis(request_timeout_ms),
        max_connections,
    }
}

fn list_request(app: &TestApp) -> String {
    format!("GET /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n", app.token())
}

/// Reads until the server closes the connection; the bytes it sent.
async fn until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return seen,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

/// Reads one response's head and status.
async fn status_of(stream: &mut TcpStream) -> u16 {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer).await.unwrap();
        assert!(n > 0, "closed before answering");
        seen.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&seen[9..12]).parse().unwrap()
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_header_timeout() {
    let app = spawn_app().await;
    let addr = listening(&app, limits(300, 30_000, 64)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\n").await.unwrap();
    let closed = tokio::time::timeout(PROMPTLY, until_closed(&mut stream)).await;
    assert!(closed.is_ok(), "the half-sent request is still held open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_slow_clients_do_not_delay_a_complete_request() {
    let app = spawn_app().await;
    let addr = listening(&app, limits(30_000, 30_000, 4096)).await;
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"POST /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\nContent-Le").await.unwrap();
        slow.push(stream);
    }
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(list_request(&app).as_bytes()).await.unwrap();
    let status = tokio::time::timeout(PROMPTLY, status_of(&mut stream)).await.expect("answered while 500 clients dawdle");
    assert_eq!(status, 200);
    drop(slow);
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_a_408_json() {
    let app = spawn_app().await;
    let addr = listening(&app, limits(30_000, 300, 64)).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let body = transfer_body("1.00");
    let head = format!(
        "POST /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nX-Qonto-2fa-Preference: mock\r\nContent-Length: {}\r\n\r\n",
        app.token(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    let answer = tokio::time::timeout(PROMPTLY, until_closed(&mut stream)).await.expect("the request is held forever");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_connection_limit_a_client_waits_for_a_free_slot() {
    let app = spawn_app().await;
    let addr = listening(&app, limits(30_000, 30_000, 2)).await;
    // Two connections take both slots (each proven served).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(list_request(&app).as_bytes()).await.unwrap();
        assert_eq!(tokio::time::timeout(PROMPTLY, status_of(&mut stream)).await.unwrap(), 200);
        held.push(stream);
    }
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(list_request(&app).as_bytes()).await.unwrap();
    let waiting = tokio::time::timeout(Duration::from_millis(300), status_of(&mut third)).await;
    assert!(waiting.is_err(), "a third connection was served beyond the limit of two");
    drop(held.pop());
    let status = tokio::time::timeout(PROMPTLY, status_of(&mut third)).await.expect("served once a slot is free");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_audit_log_records_the_clients_address() {
    let app = spawn_app().await;
    let addr = listening(&app, ServeLimits::default()).await;
    let token = app.start_transfer(&transfer_body("1.00"), "mock").await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let allow = format!(
        "POST /v2/mocked_sca_sessions/{token}/allow HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nUser-Agent: curl/8\r\nContent-Length: 0\r\n\r\n",
        app.token()
    );
    stream.write_all(allow.as_bytes()).await.unwrap();
    assert_eq!(tokio::time::timeout(PROMPTLY, status_of(&mut stream)).await.unwrap(), 200);
    let events = app.store.audit_of_session(&app.session_id(&token).await).await.unwrap();
    let decided = events.iter().find(|e| e.kind == "session.decided").unwrap();
    assert_eq!(decided.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(decided.user_agent.as_deref(), Some("curl/8"));
}
