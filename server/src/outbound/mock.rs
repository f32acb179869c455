//! A mock HTTP endpoint on loopback for tests: records every request and
//! answers what the test decides (a script, or a function of the request).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use url::Url;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the mock answers.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    pub fn new(status: u16) -> Self {
        Reply { status, headers: Vec::new(), body: String::new() }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    pub fn json(self, body: &serde_json::Value) -> Self {
        self.header("content-type", "application/json").body(&body.to_string())
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::builder().status(StatusCode::from_u16(self.status).unwrap());
        for (name, value) in self.headers {
            response = response.header(name, value);
        }
        response.body(Full::new(Bytes::from(self.body))).unwrap()
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The running mock; stops when dropped.
pub struct MockProvider {
    base: Url,
    requests: Arc<Mutex<Vec<Recorded>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockProvider {
    /// Answers with `replies` in turn, then repeats the last one.
    pub async fn scripted(replies: Vec<Reply>) -> Self {
        let script = Mutex::new(VecDeque::from(replies));
        Self::start(move |_| {
            let mut script = script.lock().unwrap();
            if script.len() > 1 {
                script.pop_front().unwrap()
            } else {
                script.front().cloned().unwrap_or_else(|| Reply::new(200))
            }
        })
        .await
    }

    /// Answers `handler(request)`.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::listen(None, Arc::new(handler)).await
    }

    /// Answers `handler(request)` over TLS, as `https://127.0.0.1:port`.
    pub async fn start_tls(tls: Arc<rustls::ServerConfig>, handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        Self::listen(Some(tokio_rustls::TlsAcceptor::from(tls)), Arc::new(handler)).await
    }

    async fn listen(tls: Option<tokio_rustls::TlsAcceptor>, handler: Arc<Handler>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = Url::parse(&format!("{scheme}://{}", listener.local_addr().unwrap())).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(serve(listener, tls, requests.clone(), handler));
        MockProvider { base, requests, task }
    }

    /// The mock's URL for `path` (with its query, if any).
    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }

    /// The mock's base URL, `http://127.0.0.1:port/`.
    pub fn base(&self) -> Url {
        self.base.clone()
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, requests: Arc<Mutex<Vec<Recorded>>>, handler: Arc<Handler>) {
    while let Ok((stream, _)) = listener.accept().await {
        let (tls, requests, handler) = (tls.clone(), requests.clone(), handler.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(stream, requests, handler).await,
                // A refused handshake (the client does not trust us) ends here.
                Some(tls) => {
                    if let Ok(stream) = tls.accept(stream).await {
                        connection(stream, requests, handler).await;
                    }
                }
            }
        });
    }
}

async fn connection<IO>(io: IO, requests: Arc<Mutex<Vec<Recorded>>>, handler: Arc<Handler>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: Request<Incoming>| {
        let (requests, handler) = (requests.clone(), handler.clone());
        async move {
            let recorded = record(request).await;
            let reply = handler(&recorded);
            requests.lock().unwrap().push(recorded);
            Ok::<_, Infallible>(reply.into_response())
        }
    });
    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(io), service).await;
}

async fn record(request: Request<Incoming>) -> Recorded {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    Recorded { method: parts.method.to_string(), path, headers: parts.headers, body }
}
