//! The accept loop: HTTP/1.1 over hyper, with what `axum::serve` does not
//! offer and a public service needs. A slow or idle client cannot hold a
//! connection past the header timeout, nor a request past the request
//! timeout, nor an answer it stops reading past the write timeout (a
//! client that pipelines requests and never reads would otherwise hold
//! its connection for ever), and at most `max_connections` connections
//! are served at once
//! (beyond that, new connections wait in the kernel's backlog until one
//! ends: a flood delays newcomers, never the requests already in). Each
//! connection is its own task, so a slow client never delays another.
//! Handlers see the peer's address as axum's `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::http::client_addr::Network;

/// How long in-flight requests have to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Limits of the accept loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// A client has this long to send a request's headers (and an idle
    /// keep-alive connection this long to start its next request).
    pub header_read_timeout: Duration,
    /// The longest a request may take, reading its body included: `408`.
    pub request_timeout: Duration,
    /// A write the client accepts no byte of for this long ends the
    /// connection (it stopped reading).
    pub write_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Connections served at once from one client address (an IPv6
    /// client's /64): one client cannot take every slot. Beyond it a new
    /// connection is closed at once.
    pub max_connections_per_client: usize,
    /// Peers the per-client cap does not apply to: the trusted proxies,
    /// whose connections carry many clients.
    pub uncapped: Vec<Network>,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 4096,
            max_connections_per_client: 256,
            uncapped: Vec::new(),
        }
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
    accept_loop(listener, router, limits, None, shutdown).await
}

/// [`serve`] over TLS: each connection's handshake runs in its own task
/// (a slow one delays no one) and must end within the header timeout.
pub async fn serve_https(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept_loop(listener, router, limits, Some(tls), shutdown).await
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let per_client = PerClient::default();
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
        let Some(client_slot) = per_client.take(peer.ip(), &limits) else {
            tracing::debug!(peer = %peer.ip(), "connection closed: too many from this client");
            continue;
        };
        // Small request/response exchanges: send each answer at once.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let service = answer(router.clone(), peer, limits.request_timeout);
        let io = WriteDeadline::new(tcp, limits.write_timeout);
        let (http, stopping, tls, handshake_timeout) = (http.clone(), stopping.clone(), tls.clone(), limits.header_read_timeout);
        tokio::spawn(async move {
            match tls {
                None => run(&http, io, service, stopping).await,
                Some(tls) => match tokio::time::timeout(handshake_timeout, tls.accept(io)).await {
                    Ok(Ok(io)) => run(&http, io, service, stopping).await,
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
            drop(client_slot);
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

/// Serves one connection until it ends or the server stops (then lets
/// its request in flight finish).
async fn run<S>(http: &Http1, io: S, service: impl Fn(Request<Incoming>) -> Answer + Send + 'static, mut stopping: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = http.serve_connection(TokioIo::new(io), hyper::service::service_fn(service));
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
}

type Http1 = hyper::server::conn::http1::Builder;

/// Connections open per client address.
#[derive(Clone, Default)]
struct PerClient(Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>);

/// One connection of a client, counted until dropped.
struct ClientSlot {
    open: PerClient,
    key: Option<IpAddr>,
}

impl PerClient {
    /// A slot for a connection from `ip`, unless its client has its
    /// share open already.
    fn take(&self, ip: IpAddr, limits: &ServeLimits) -> Option<ClientSlot> {
        if limits.uncapped.iter().any(|net| net.contains(ip)) {
            return Some(ClientSlot { open: self.clone(), key: None });
        }
        let key = client_key(ip);
        let mut open = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= limits.max_connections_per_client.max(1) {
            return None;
        }
        *count += 1;
        Some(ClientSlot { open: self.clone(), key: Some(key) })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.open.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let std::collections::hash_map::Entry::Occupied(mut entry) = open.entry(key) {
            *entry.get_mut() -= 1;
            if *entry.get() == 0 {
                entry.remove();
            }
        }
    }
}

/// A client is an IPv4 address or an IPv6 /64 (its owner has them all).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(ip) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(ip) & (u128::MAX << 64))),
        v4 => v4,
    }
}

/// A stream whose writes fail with `TimedOut` once the peer has accepted
/// no byte for `limit`: each write that makes progress starts the clock
/// again, so a slow but moving reader is served, a stopped one is cut.
struct WriteDeadline<S> {
    inner: S,
    limit: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    fn new(inner: S, limit: Duration) -> Self {
        WriteDeadline { inner, limit, stalled: None }
    }

    /// After a write that made no progress: pending until the deadline,
    /// then the error that ends the connection.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let limit = self.limit;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading"))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, result: Poll<std::io::Result<T>>, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        match result {
            Poll::Ready(done) => {
                self.stalled = None;
                Poll::Ready(done)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.progressed(result, cx)
    }
}

/// Raises this process's soft limit of open files to its hard limit, and
/// returns how many connections fit in what it has (a few hundred
/// descriptors kept for the database, logs and the listener): a limit of
/// connections above it would fail accepts with EMFILE instead of
/// queueing newcomers in the backlog.
pub fn connections_that_fit(wanted: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    const KEPT: u64 = 256;
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(hard)) = (limit.current, limit.maximum) {
        if current < hard {
            limit.current = Some(hard);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::warn!(error = %e, "the open-file limit could not be raised");
            }
        }
    }
    let open_files = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let fit = usize::try_from(open_files.saturating_sub(KEPT).max(1)).unwrap_or(usize::MAX);
    if wanted > fit {
        tracing::warn!(wanted, fit, open_files, "PASSGATE_MAX_CONNECTIONS lowered to what the open-file limit allows");
    }
    wanted.min(fit)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_file_limit_is_raised_and_connections_fit_in_it() {
        use rustix::process::{getrlimit, Resource};
        let fit = connections_that_fit(usize::MAX);
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum, "the soft limit raised to the hard one");
        let open_files = usize::try_from(limit.current.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
        assert!(fit < open_files, "{fit} connections in {open_files} files");
        assert_eq!(connections_that_fit(16), 16, "a limit that fits is kept");
    }

    #[test]
    fn a_clients_share_is_counted_until_its_connections_end() {
        let limits = ServeLimits { max_connections_per_client: 2, uncapped: vec!["10.0.0.0/8".parse().unwrap()], ..ServeLimits::default() };
        let open = PerClient::default();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let one = open.take(ip("192.0.2.1"), &limits).unwrap();
        let two = open.take(ip("192.0.2.1"), &limits).unwrap();
        assert!(open.take(ip("192.0.2.1"), &limits).is_none(), "its share is taken");
        assert!(open.take(ip("192.0.2.2"), &limits).is_some(), "another client's is not");
        // An IPv6 client is its /64.
        let _v6 = [open.take(ip("2001:db8::1"), &limits).unwrap(), open.take(ip("2001:db8::2"), &limits).unwrap()];
        assert!(open.take(ip("2001:db8::ffff:1"), &limits).is_none());
        assert!(open.take(ip("2001:db8:0:1::1"), &limits).is_some());
        drop(one);
        assert!(open.take(ip("192.0.2.1"), &limits).is_some(), "freed when a connection ends");
        drop(two);
        let proxies: Vec<_> = (0..5).map(|_| open.take(ip("10.1.2.3"), &limits).unwrap()).collect();
        assert_eq!(proxies.len(), 5, "a trusted proxy is not capped");
    }
}
