//! Outbound HTTPS: the one client Passgate uses to call out (SMS
//! providers; later Web Push). hyper's client over rustls on ring, with
//! Mozilla's roots compiled in (no system CA store to depend on), HTTP/1.1.
//!
//! Every request is bounded: a deadline covers connecting, sending and
//! reading the answer, and the answer's body is read up to a limit, so a
//! slow or hostile endpoint cannot hold a sender or fill its memory.
//! Cleartext `http://` is allowed only to loopback (a local relay, the
//! tests' mock provider): anything else would put secrets on the wire.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};
use url::{Host, Url};

#[cfg(any(test, feature = "test-support"))]
pub mod mock;
#[cfg(any(test, feature = "test-support"))]
pub mod mock_push;

/// How long one request may take, from connecting to the last byte read.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer's body that is read.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// How the client is built.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub timeout: Duration,
    pub max_body: usize,
    /// A PEM file of CAs trusted on top of the compiled-in roots (a
    /// private CA, a test CA).
    pub extra_ca: Option<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { timeout: DEFAULT_TIMEOUT, max_body: DEFAULT_MAX_BODY, extra_ca: None }
    }
}

/// Why a request got no answer. The request may or may not have reached
/// the server: callers make resends safe (an idempotency key).
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The URL is not one this client calls (not https, nor loopback http).
    #[error("refused URL: {0}")]
    RefusedUrl(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Connecting, TLS, or the HTTP exchange failed.
    #[error("request failed: {0}")]
    Transport(String),
    #[error("the answer's body exceeds {0} bytes")]
    BodyTooLarge(usize),
}

/// What the server answered.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl OutboundResponse {
    /// `Retry-After`, in seconds or as an HTTP-date (then counted from
    /// `now`; a date in the past is zero). `None` if absent or unreadable.
    pub fn retry_after(&self, now: SystemTime) -> Option<Duration> {
        let value = self.headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        let date = httpdate::parse_http_date(value).ok()?;
        Some(date.duration_since(now).unwrap_or(Duration::ZERO))
    }
}

/// The outbound client. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct HttpsClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body: usize,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient").field("timeout", &self.timeout).field("max_body", &self.max_body).finish_non_exhaustive()
    }
}

impl HttpsClient {
    pub fn new(options: &ClientOptions) -> anyhow::Result<Self> {
        let tls = tls_config(options.extra_ca.as_deref())?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(HttpsClient { client, timeout: options.timeout, max_body: options.max_body })
    }

    /// POSTs `body` to `url` with `headers`, and reads the answer (any
    /// status: classifying it is the caller's).
    pub async fn post(&self, url: &Url, headers: &[(HeaderName, HeaderValue)], body: Vec<u8>) -> Result<OutboundResponse, OutboundError> {
        check_url(url)?;
        let mut request = Request::builder().method(Method::POST).uri(url.as_str());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request.body(Full::new(Bytes::from(body))).map_err(|e| OutboundError::RefusedUrl(e.to_string()))?;
        tokio::time::timeout(self.timeout, self.exchange(request)).await.map_err(|_| OutboundError::Timeout(self.timeout))?
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Result<OutboundResponse, OutboundError> {
        let response = self.client.request(request).await.map_err(|e| OutboundError::Transport(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, self.max_body).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                OutboundError::BodyTooLarge(self.max_body)
            } else {
                OutboundError::Transport(e.to_string())
            }
        })?;
        Ok(OutboundResponse { status: parts.status, headers: parts.headers, body: body.to_bytes() })
    }
}

/// Refuses what this client must not call: anything but `https://`, and
/// `http://` to a host that is not loopback (127.0.0.0/8, ::1, localhost).
pub fn check_url(url: &Url) -> Result<(), OutboundError> {
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if is_loopback(url) => Ok(()),
        "http" => Err(OutboundError::RefusedUrl(format!("{}: cleartext http is allowed to loopback only; use https", redact(url)))),
        _ => Err(OutboundError::RefusedUrl(format!("{}: not an https URL", redact(url)))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The URL without credentials, query or fragment: safe for an error.
fn redact(url: &Url) -> String {
    format!("{}://{}{}", url.scheme(), url.host_str().unwrap_or(""), url.port().map(|p| format!(":{p}")).unwrap_or_default())
}

/// hyper's client error says little at the top ("client error
/// (Connect)"): the causes say what happened.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn tls_config(extra_ca: Option<&Path>) -> anyhow::Result<ClientConfig> {
    // ring, not aws-lc-rs (which needs cmake to build); deprecated in
    // rustls 0.23.48 for lacking post-quantum key exchange only.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = extra_ca {
        add_pem_roots(&mut roots, path)?;
    }
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("outbound TLS: the protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn add_pem_roots(roots: &mut RootCertStore, path: &Path) -> anyhow::Result<()> {
    let shown = path.display();
    let mut added = 0;
    for cert in CertificateDer::pem_file_iter(path).with_context(|| format!("outbound TLS: reading the CA file {shown}"))? {
        let cert = cert.with_context(|| format!("outbound TLS: {shown} is not PEM certificates"))?;
        roots.add(cert).with_context(|| format!("outbound TLS: a certificate of {shown} is not usable"))?;
        added += 1;
    }
    if added == 0 {
        anyhow::bail!("outbound TLS: the CA file {shown} holds no certificate");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mock::{MockProvider, Reply};
    use super::*;

    fn client(timeout: Duration) -> HttpsClient {
        HttpsClient::new(&ClientOptions { timeout, ..ClientOptions::default() }).unwrap()
    }

    #[test]
    fn cleartext_is_for_loopback_only() {
        for allowed in
            ["https://sms.example.com/send", "http://127.0.0.1:9/x", "http://127.8.9.10/", "http://[::1]:80/", "http://localhost:8080/"]
        {
            assert!(check_url(&Url::parse(allowed).unwrap()).is_ok(), "{allowed}");
        }
        for refused in
            ["http://sms.example.com/send", "http://10.0.0.1/", "http://[::2]/", "http://localhost.evil.com/", "ftp://127.0.0.1/"]
        {
            let err = check_url(&Url::parse(refused).unwrap()).unwrap_err();
            assert!(matches!(err, OutboundError::RefusedUrl(_)), "{refused}: {err}");
        }
    }

    #[test]
    fn refused_urls_do_not_show_their_credentials() {
        let err = check_url(&Url::parse("http://user:hunter2@sms.example.com/p?token=abc").unwrap()).unwrap_err();
        let text = err.to_string();
        assert!(!text.contains("hunter2") && !text.contains("abc"), "{text}");
    }

    #[tokio::test]
    async fn a_non_loopback_http_url_is_refused_before_connecting() {
        let err = client(DEFAULT_TIMEOUT).post(&Url::parse("http://192.0.2.1/").unwrap(), &[], vec![]).await.unwrap_err();
        assert!(matches!(err, OutboundError::RefusedUrl(_)), "{err}");
    }

    #[tokio::test]
    async fn posts_and_reads_status_headers_and_body() {
        let mock = MockProvider::scripted(vec![Reply::new(503).header("retry-after", "7").body("busy")]).await;
        let headers = [(HeaderName::from_static("x-test"), HeaderValue::from_static("1"))];
        let response = client(DEFAULT_TIMEOUT).post(&mock.url("/hook"), &headers, b"hello".to_vec()).await.unwrap();
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.retry_after(SystemTime::now()), Some(Duration::from_secs(7)));
        assert_eq!(&response.body[..], b"busy");
        let seen = mock.requests();
        assert_eq!((seen[0].path.as_str(), &seen[0].body[..]), ("/hook", &b"hello"[..]));
        assert_eq!(seen[0].headers["x-test"], "1");
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let mock = MockProvider::scripted(vec![Reply::new(200).body(&"x".repeat(2048))]).await;
        let small = HttpsClient::new(&ClientOptions { max_body: 1024, ..ClientOptions::default() }).unwrap();
        let err = small.post(&mock.url("/"), &[], vec![]).await.unwrap_err();
        assert!(matches!(err, OutboundError::BodyTooLarge(1024)), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        // Accepts, never answers.
        let _held = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let err = client(Duration::from_millis(200)).post(&url, &[], vec![]).await.unwrap_err();
        assert!(matches!(err, OutboundError::Timeout(_)), "{err}");
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
            OutboundResponse { status: StatusCode::TOO_MANY_REQUESTS, headers, body: Bytes::new() }.retry_after(now)
        };
        assert_eq!(with("120"), Some(Duration::from_secs(120)));
        assert_eq!(with(&httpdate::fmt_http_date(now + Duration::from_secs(30))), Some(Duration::from_secs(30)));
        assert_eq!(with(&httpdate::fmt_http_date(now - Duration::from_secs(30))), Some(Duration::ZERO));
        assert_eq!(with("soon"), None);
    }

    /// A test CA, and a TLS server config for 127.0.0.1 signed by it.
    fn private_ca() -> (String, Arc<rustls::ServerConfig>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key.into())
            .unwrap();
        (ca.pem(), Arc::new(config))
    }

    #[tokio::test]
    async fn https_is_verified_against_the_roots_and_the_extra_ca() {
        let (ca_pem, tls) = private_ca();
        let mock = MockProvider::start_tls(tls, |_| Reply::new(200).body("over tls")).await;
        assert_eq!(mock.base().scheme(), "https");
        let err = client(DEFAULT_TIMEOUT).post(&mock.url("/"), &[], vec![]).await.unwrap_err();
        assert!(matches!(&err, OutboundError::Transport(text) if text.contains("certificate")), "unknown issuer: {err}");
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let trusting = HttpsClient::new(&ClientOptions { extra_ca: Some(ca_file), ..ClientOptions::default() }).unwrap();
        let response = trusting.post(&mock.url("/"), &[], b"hi".to_vec()).await.unwrap();
        assert_eq!((response.status, &response.body[..]), (StatusCode::OK, &b"over tls"[..]));
        assert_eq!(mock.requests().len(), 1, "only the trusting client got through");
    }

    #[test]
    fn an_extra_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = HttpsClient::new(&ClientOptions { extra_ca: Some(empty), ..ClientOptions::default() }).unwrap_err();
        assert!(err.to_string().contains("holds no certificate"), "{err}");
    }
}
