//! The accept loop: HTTP/1.1 over hyper, with what `axum::serve` does not
//! offer and a public service needs. A slow or idle client cannot hold a
//! connection past the header timeout, nor a request past the request
//! timeout, and at most `max_connections` connections are served at once
//! (beyond that, new connections wait in the kernel's backlog until one
//! ends: a flood delays newcomers, never the requests already in). Each
//! connection is its own task, so a slow client never delays another.
//! Handlers see the peer's address as axum's `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// How long in-flight requests have to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Limits of the accept loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// A client has this long to send a request's headers (and an idle
    /// keep-alive connection this long to start its next request).
    pub header_read_timeout: Duration,
    /// The longest a request may take, reading its body included: `408`.
    pub request_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits { header_read_timeout: Duration::from_secs(10), request_timeout: Duration::from_secs(30), max_connections: 4096 }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting and gives the open connections [`DRAIN`] to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
                    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
                        // The client gave up before we accepted: routine.
                        tracing::debug!(error = %e, "accept failed");
                    } else {
                        // Out of file descriptors and the like: wait, never die.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
        };
        // Small request/response exchanges: send each answer at once.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let service = hyper::service::service_fn(answer(router.clone(), peer, limits.request_timeout));
        let connection = http.serve_connection(TokioIo::new(tcp), service);
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let stop = async move {
                // Dropped at once: no guard is held across an await.
                let _ = stopping.wait_for(|stop| *stop).await.map(|_| ());
            };
            tokio::select! {
                result = connection.as_mut() => log_end(result),
                () = stop => {
                    connection.as_mut().graceful_shutdown();
                    log_end(connection.await);
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every slot back: every connection has ended.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all)).await.is_err() {
        tracing::warn!("connections still open after the drain period: closing them");
    }
    Ok(())
}

/// A response on its way.
type Answer = std::pin::Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The per-request service of one connection from `peer`.
fn answer(router: Router, peer: SocketAddr, timeout: Duration) -> impl Fn(Request<Incoming>) -> Answer + Clone {
    move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        Box::pin(async move {
            match tokio::time::timeout(timeout, router.oneshot(request.map(axum::body::Body::new))).await {
                Ok(response) => response,
                Err(_) => Ok(request_timeout()),
            }
        })
    }
}

/// `408` in the API's error shape; the connection closes after it.
fn request_timeout() -> Response {
    let body = shared::ErrorBody {
        code: shared::error_code::REQUEST_TIMEOUT.into(),
        message: "The request took too long to arrive: send it again".into(),
        field: None,
        step_up: None,
    };
    let mut response = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn log_end(result: hyper::Result<()>) {
    if let Err(e) = result {
        // Timeouts and clients that go away are routine.
        tracing::debug!(error = %e, "connection ended");
    }
}
