//! The real accept loop (`passgate::serve::serve`) on a local port, driven
//! over raw TCP: slow and stuck clients are cut off, they do not delay
//! others, the connection limit holds, handlers see the client's address,
//! and shutdown lets the request in flight finish.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use passgate::serve::{serve, ServeLimits};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};

use crate::helpers::{spawn_app, transfer_body, TestApp};

/// Long enough for any answer of the in-process app on a busy machine.
const PROMPTLY: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

async fn start(router: Router, limits: ServeLimits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let task = tokio::spawn(serve(listener, router, limits, shutdown));
    Server { addr, stop: Some(stop), task }
}

fn limits(header_read_timeout: Duration, request_timeout: Duration, max_connections: usize) -> ServeLimits {
    ServeLimits { header_read_timeout, request_timeout, max_connections, ..ServeLimits::default() }
}

fn list_transfers(app: &TestApp) -> String {
    format!("GET /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\r\n", app.token())
}

struct Answer {
    status: u16,
    /// The status line and headers, lower-cased.
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// Reads one HTTP/1.1 answer (with a `content-length`) off `stream`.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a complete answer: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap().to_ascii_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no content-length in {head:?}"));
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed in the middle of the body");
        buf.extend_from_slice(&chunk[..n]);
    }
    Answer { status, head, body: buf[head_end..head_end + length].to_vec() }
}

/// Waits for the server to close `stream`; returns what it sent before.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut rest = Vec::new();
    match timeout(within, stream.read_to_end(&mut rest)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            assert!(matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted), "unexpected read error: {e}")
        }
        Err(_) => panic!("the server kept the connection open for {within:?}"),
    }
    rest
}

#[tokio::test]
async fn a_client_that_stops_mid_headers_is_disconnected_after_the_header_timeout() {
    let app = spawn_app().await;
    let header_timeout = Duration::from_secs(1);
    let server = start(app.router.clone(), limits(header_timeout, Duration::from_secs(30), 64)).await;

    let started = Instant::now();
    let mut half_sent = TcpStream::connect(server.addr).await.unwrap();
    half_sent.write_all(b"GET /v2/sepa/transfers HTTP/1.1\r\nHost: local").await.unwrap();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();

    let answer = closed_by_server(&mut half_sent, header_timeout + PROMPTLY).await;
    assert!(answer.is_empty(), "no answer to a request never received: {:?}", String::from_utf8_lossy(&answer));
    assert!(started.elapsed() >= header_timeout, "closed after {:?}, before the timeout", started.elapsed());
    // A connection that sends nothing at all is cut off the same way.
    assert!(closed_by_server(&mut silent, PROMPTLY).await.is_empty());
}

#[tokio::test]
async fn five_hundred_half_sent_requests_do_not_delay_a_complete_one() {
    let app = spawn_app().await;
    // Long header timeout: the slow clients stay connected for the whole test.
    // All from one address here: no per-client cap in the way.
    let limits = ServeLimits { header_read_timeout: Duration::from_secs(30), max_connections_per_client: 1_000, ..ServeLimits::default() };
    let server = start(app.router.clone(), limits).await;

    let mut slow = Vec::with_capacity(500);
    for _ in 0..500 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"POST /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\nContent-Ty").await.unwrap();
        slow.push(stream);
    }

    let answer = timeout(PROMPTLY, async {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(list_transfers(&app).as_bytes()).await.unwrap();
        read_answer(&mut stream).await
    })
    .await
    .expect("a complete request waited behind the slow clients");
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert!(answer.json()["transfers"].is_array(), "{}", answer.json());
    assert_eq!(slow.len(), 500);
}

#[tokio::test]
async fn a_body_that_never_ends_is_answered_408_after_the_request_timeout() {
    let app = spawn_app().await;
    let request_timeout = Duration::from_secs(1);
    let server = start(app.router.clone(), limits(Duration::from_secs(30), request_timeout, 64)).await;

    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v2/sepa/transfers HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nX-Qonto-2fa-Preference: mock\r\nContent-Length: 200\r\n\r\n",
        app.token()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(br#"{"amount":"12"#).await.unwrap();

    let answer = timeout(request_timeout + PROMPTLY, read_answer(&mut stream)).await.expect("no answer to a stuck body");
    assert!(started.elapsed() >= request_timeout, "answered after {:?}, before the timeout", started.elapsed());
    assert_eq!(answer.status, 408, "{}", String::from_utf8_lossy(&answer.body));
    assert!(answer.head.contains("content-type: application/json"), "{}", answer.head);
    let body: shared::ErrorBody = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body.code, shared::error_code::REQUEST_TIMEOUT);
    assert!(!body.message.is_empty());
    assert_eq!(body.field, None);
    assert!(answer.json().get("field").is_none(), "{}", answer.json());
    // The rest of the body is never read: the connection is closed.
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert!(closed_by_server(&mut stream, PROMPTLY).await.is_empty());
}

#[tokio::test]
async fn beyond_the_connection_limit_a_new_client_waits_until_a_connection_closes() {
    let app = spawn_app().await;
    let server = start(app.router.clone(), limits(Duration::from_secs(30), Duration::from_secs(30), 2)).await;

    // Two kept-alive connections, each served once and then idle: the limit.
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(list_transfers(&app).as_bytes()).await.unwrap();
        let answer = timeout(PROMPTLY, read_answer(&mut stream)).await.unwrap();
        assert_eq!(answer.status, 200);
        open.push(stream);
    }

    // The third connects (the kernel's backlog) but is not served...
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(list_transfers(&app).as_bytes()).await.unwrap();
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(700), third.read(&mut byte)).await;
    assert!(early.is_err(), "served beyond the limit: {early:?}");

    // ...until one of the two closes.
    drop(open.remove(0));
    let answer = timeout(PROMPTLY, read_answer(&mut third)).await.expect("not served after a slot freed");
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
}

#[tokio::test]
async fn handlers_see_the_client_address_as_connect_info() {
    let router = Router::new().route("/whoami", get(|ConnectInfo(client): ConnectInfo<SocketAddr>| async move { client.to_string() }));
    let server = start(router, ServeLimits::default()).await;

    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let answer = timeout(PROMPTLY, read_answer(&mut stream)).await.unwrap();
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert_eq!(String::from_utf8(answer.body).unwrap(), stream.local_addr().unwrap().to_string());
}

#[tokio::test]
async fn on_shutdown_the_server_stops_accepting_and_finishes_the_request_in_flight() {
    let (entered, mut handler_entered) = mpsc::unbounded_channel::<()>();
    let release = Arc::new(Semaphore::new(0));
    let router = Router::new().route(
        "/slow",
        get({
            let release = release.clone();
            move || async move {
                let _ = entered.send(());
                let _permit = release.acquire().await.unwrap();
                "done"
            }
        }),
    );
    let mut server = start(router, limits(Duration::from_secs(10), Duration::from_secs(10), 64)).await;

    // A kept-alive connection, served once and now idle.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /nothing HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    assert_eq!(timeout(PROMPTLY, read_answer(&mut idle)).await.unwrap().status, 404);
    let mut in_flight = TcpStream::connect(server.addr).await.unwrap();
    in_flight.write_all(b"GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    timeout(PROMPTLY, handler_entered.recv()).await.unwrap().unwrap();

    server.stop.take().unwrap().send(()).unwrap();
    // New clients are refused once the listener is closed.
    timeout(PROMPTLY, async {
        while TcpStream::connect(server.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("still accepting after shutdown");
    // The idle connection is closed at once (well before its 10 s header
    // timeout); the one in flight stays open while its handler runs.
    assert!(closed_by_server(&mut idle, PROMPTLY).await.is_empty());
    let mut byte = [0u8; 1];
    let early = timeout(Duration::from_millis(500), in_flight.read(&mut byte)).await;
    assert!(early.is_err(), "the request in flight was cut short: {early:?}");
    assert!(!server.task.is_finished(), "returned with a request in flight");

    release.add_permits(1);
    let answer = timeout(PROMPTLY, read_answer(&mut in_flight)).await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"done");
    timeout(PROMPTLY, &mut server.task).await.expect("serve did not return").unwrap().unwrap();
}

#[tokio::test]
async fn the_audit_log_records_the_clients_address() {
    let app = spawn_app().await;
    let server = start(app.router.clone(), ServeLimits::default()).await;
    let addr = server.addr;
    let token = app.start_transfer(&transfer_body("1.00"), "mock").await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let allow = format!(
        "POST /v2/mocked_sca_sessions/{token}/allow HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nUser-Agent: curl/8\r\nContent-Length: 0\r\n\r\n",
        app.token()
    );
    stream.write_all(allow.as_bytes()).await.unwrap();
    assert_eq!(tokio::time::timeout(PROMPTLY, read_answer(&mut stream)).await.unwrap().status, 200);
    let events = app.store.audit_of_session(&app.session_id(&token).await).await.unwrap();
    let decided = events.iter().find(|e| e.kind == "session.decided").unwrap();
    assert_eq!(decided.client_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(decided.user_agent.as_deref(), Some("curl/8"));
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_after_the_write_timeout() {
    let big = Arc::new("x".repeat(16 << 20));
    let router =
        Router::new().route("/big", get(move || std::future::ready(big.as_str().to_owned()))).route("/small", get(|| async { "small" }));
    let limits = ServeLimits { write_timeout: Duration::from_millis(500), max_connections: 1, ..ServeLimits::default() };
    let server = start(router, limits).await;
    // A client with a tiny receive window asks for 16 MB and reads none of it:
    // the server's writes stall once the socket buffers are full.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stopped = socket.connect(server.addr).await.unwrap();
    stopped.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    // It holds the only connection slot until the write deadline frees it.
    let mut next = TcpStream::connect(server.addr).await.unwrap();
    next.write_all(b"GET /small HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
    let answer = timeout(PROMPTLY, read_answer(&mut next)).await.expect("the stalled reader still holds the slot");
    assert_eq!((answer.status, answer.body.as_slice()), (200, b"small".as_slice()));
    drop(stopped);
}

#[tokio::test]
async fn one_client_cannot_take_every_connection_unless_it_is_a_trusted_proxy() {
    let app = spawn_app().await;
    let capped = ServeLimits { max_connections: 10, max_connections_per_client: 2, ..ServeLimits::default() };
    let server = start(app.router.clone(), capped.clone()).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(list_transfers(&app).as_bytes()).await.unwrap();
        assert_eq!(timeout(PROMPTLY, read_answer(&mut stream)).await.unwrap().status, 200);
        open.push(stream);
    }
    // A third from the same address is closed at once, unanswered (the
    // global limit, 10, is far).
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    let _ = third.write_all(list_transfers(&app).as_bytes()).await;
    assert!(closed_by_server(&mut third, PROMPTLY).await.is_empty(), "served beyond its share");

    // A trusted proxy carries many clients: not capped.
    let proxy = ServeLimits { uncapped: vec!["127.0.0.1/32".parse().unwrap()], ..capped };
    let server = start(app.router.clone(), proxy).await;
    let mut open = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(list_transfers(&app).as_bytes()).await.unwrap();
        assert_eq!(timeout(PROMPTLY, read_answer(&mut stream)).await.unwrap().status, 200);
        open.push(stream);
    }
}
