//! Web Push: one message to a browser's push subscription, through the
//! push service the browser chose (FCM, Mozilla's autopush, Apple's).
//!
//! Three RFCs make one request:
//! - RFC 8291 encrypts the payload (`aes128gcm`, one record) for the
//!   subscription's keys (`p256dh`, `auth`): the push service carries it
//!   without reading it. web-push-native does this part, a maintained
//!   pure-Rust implementation checked against the RFC's test vector.
//! - RFC 8292 (VAPID) proves who sends: an ES256 JWT over the push
//!   service's origin, signed with the key whose public half the browser
//!   subscribed with (`applicationServerKey`). Signed here on the p256
//!   webauthn-rs already builds, not web-push-native's own `vapid`
//!   feature: that one pulls jwt-simple, and drops a non-default port
//!   from `aud`, which a strict push service (or our mock) refuses.
//! - RFC 8030 carries it: a POST to the endpoint with `TTL` and
//!   `Urgency`. 201 means taken; 404 or 410 means the subscription is
//!   dead, and the caller deletes it.
//!
//! An endpoint is a capability URL (whoever knows it and the keys can
//! push to the phone): neither `Debug` nor any failure reason shows its
//! path, only its origin. The payload never appears in a reason either.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use p256::ecdsa::signature::{Error as SignatureError, Signer as _};
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::Generate as _;
use url::Url;

use crate::notify::providers::MAX_RETRY_AFTER;
use crate::outbound::{check_url, HttpsClient, OutboundError, OutboundResponse};

/// The longest endpoint accepted. Real ones are a few hundred bytes; the
/// bound keeps a hostile client from storing megabytes per phone.
pub const MAX_ENDPOINT_LEN: usize = 2048;
/// Longest VAPID token lifetime accepted (Apple refuses more than 24 h).
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The lifetime of the tokens [`WebPush`] signs: well inside
/// [`MAX_TOKEN_LIFETIME`], so a clock a little ahead of the push
/// service's is still accepted.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// The largest payload sent: push services take 4,096 bytes of body, and
/// `aes128gcm` adds an 86-byte header, a 16-byte tag and a delimiter.
pub const MAX_PAYLOAD: usize = 4096 - 86 - 16 - 1;

/// An uncompressed P-256 point: 0x04, x, y.
const P256DH_LEN: usize = 65;
const AUTH_LEN: usize = 16;
/// A VAPID private key: a P-256 scalar, big-endian.
const PRIVATE_KEY_LEN: usize = 32;
/// The most of a push service's answer quoted in a reason.
const MAX_QUOTED: usize = 200;

/// A browser's PushSubscription, parsed: endpoint https (or http on
/// loopback, as [`check_url`] allows), at most [`MAX_ENDPOINT_LEN`]
/// bytes; p256dh an uncompressed P-256 point (65 bytes, base64url,
/// padding tolerated); auth 16 bytes base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct PushSubscription {
    endpoint: Url,
    p256dh: [u8; P256DH_LEN],
    auth: [u8; AUTH_LEN],
}

/// `Debug` shows the endpoint's origin only: the path is the capability.
impl std::fmt::Debug for PushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushSubscription").field("endpoint", &self.origin()).finish_non_exhaustive()
    }
}

/// Why a subscription was refused: which field, and why. Never the
/// endpoint's path.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    #[error("endpoint: {0}")]
    Endpoint(String),
    #[error("p256dh: {0}")]
    P256dh(String),
    #[error("auth: {0}")]
    Auth(String),
}

impl PushSubscription {
    /// The three strings of `PushSubscription.toJSON()`: `endpoint`,
    /// `keys.p256dh`, `keys.auth`.
    pub fn parse(endpoint: &str, p256dh: &str, auth: &str) -> Result<Self, SubscriptionError> {
        let endpoint = parse_endpoint(endpoint)?;
        let p256dh = decode_base64url(p256dh).ok_or_else(|| SubscriptionError::P256dh("not base64url".into()))?;
        let p256dh: [u8; P256DH_LEN] = p256dh.try_into().map_err(|bytes: Vec<u8>| {
            SubscriptionError::P256dh(format!("{} bytes, not {P256DH_LEN} (an uncompressed P-256 point)", bytes.len()))
        })?;
        if p256dh[0] != 0x04 {
            return Err(SubscriptionError::P256dh("not an uncompressed point (its first byte is not 0x04)".into()));
        }
        // The encryption would fail on a point off the curve: refuse it
        // now, when the browser can still be told, not at every push.
        p256::PublicKey::from_sec1_bytes(&p256dh).map_err(|_| SubscriptionError::P256dh("not a point on P-256".into()))?;
        let auth = decode_base64url(auth).ok_or_else(|| SubscriptionError::Auth("not base64url".into()))?;
        let auth: [u8; AUTH_LEN] =
            auth.try_into().map_err(|bytes: Vec<u8>| SubscriptionError::Auth(format!("{} bytes, not {AUTH_LEN}", bytes.len())))?;
        Ok(PushSubscription { endpoint, p256dh, auth })
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The UA's public key, base64url without padding (as browsers give it).
    pub fn p256dh(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.p256dh)
    }

    /// The auth secret, base64url without padding.
    pub fn auth(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.auth)
    }

    /// `scheme://host[:port]`: what may be shown of the endpoint.
    fn origin(&self) -> String {
        self.endpoint.origin().ascii_serialization()
    }
}

fn parse_endpoint(text: &str) -> Result<Url, SubscriptionError> {
    let too_long = |len: usize| SubscriptionError::Endpoint(format!("{len} bytes, more than {MAX_ENDPOINT_LEN}"));
    if text.len() > MAX_ENDPOINT_LEN {
        return Err(too_long(text.len()));
    }
    let url = Url::parse(text).map_err(|e| SubscriptionError::Endpoint(format!("not a URL ({e})")))?;
    // Parsing may lengthen it (an internationalised host in punycode).
    if url.as_str().len() > MAX_ENDPOINT_LEN {
        return Err(too_long(url.as_str().len()));
    }
    check_url(&url).map_err(|e| SubscriptionError::Endpoint(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SubscriptionError::Endpoint("carries credentials (user:password@)".into()));
    }
    Ok(url)
}

/// base64url, with or without `=` padding (some client libraries pad).
fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

/// The push services Passgate sends to: a subscription whose endpoint is
/// elsewhere is refused when the phone posts it. The endpoint is chosen by
/// the client, and Passgate POSTs to it from inside the bank's network:
/// without this list a paired phone could aim those requests at any
/// internal host (server-side request forgery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushHosts(Vec<String>);

impl PushHosts {
    /// The browsers' own push services: Google's FCM (Chrome, Edge,
    /// Android), Mozilla's autopush (Firefox), Apple's (Safari, iOS home
    /// screen apps) and Microsoft's WNS. `*.` names any subdomain.
    pub const BROWSERS: &'static str =
        "fcm.googleapis.com,updates.push.services.mozilla.com,web.push.apple.com,*.push.apple.com,*.notify.windows.com";

    /// A comma-separated list of host names, each exact or `*.` and a
    /// domain; IP addresses only as given (for a test's loopback service).
    pub fn parse(text: &str) -> Result<Self, String> {
        let hosts: Vec<String> = text.split(',').map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect();
        if hosts.is_empty() {
            return Err("no host given".into());
        }
        for host in &hosts {
            let name = host.strip_prefix("*.").unwrap_or(host);
            let valid = !name.is_empty()
                && name.split('.').all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
            if !valid && name.parse::<std::net::IpAddr>().is_err() {
                return Err(format!("{host:?} is not a host name (example.com or *.example.com)"));
            }
        }
        Ok(PushHosts(hosts))
    }

    /// Whether `endpoint`'s host is on the list.
    pub fn allows(&self, endpoint: &Url) -> bool {
        let Some(host) = endpoint.host_str() else { return false };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.0.iter().any(|allowed| match allowed.strip_prefix("*.") {
            Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => host == *allowed,
        })
    }
}

impl Default for PushHosts {
    fn default() -> Self {
        // Valid names (a test parses the list).
        PushHosts(PushHosts::BROWSERS.split(',').map(str::to_owned).collect())
    }
}

/// Why a VAPID key or subject was refused. Never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidKeyError {
    #[error("VAPID private key: {0}")]
    PrivateKey(String),
    #[error("VAPID subject: {0}")]
    Subject(String),
}

/// The VAPID key pair (ES256 on P-256). Its public half is the
/// `applicationServerKey` browsers subscribe with: changing it orphans
/// every subscription. `Debug` never shows the private key.
#[derive(Clone)]
pub struct VapidKey {
    signing: SigningKey,
}

impl std::fmt::Debug for VapidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VapidKey").field("public", &self.public_base64url()).finish_non_exhaustive()
    }
}

impl VapidKey {
    /// A new key from the OS CSPRNG.
    pub fn generate() -> Self {
        VapidKey { signing: SigningKey::generate() }
    }

    /// The 32-byte private scalar, base64url (padding tolerated).
    pub fn from_base64url(private: &str) -> Result<Self, VapidKeyError> {
        let bytes = decode_base64url(private).ok_or_else(|| VapidKeyError::PrivateKey("not base64url".into()))?;
        if bytes.len() != PRIVATE_KEY_LEN {
            return Err(VapidKeyError::PrivateKey(format!("{} bytes, not {PRIVATE_KEY_LEN}", bytes.len())));
        }
        let signing = SigningKey::from_slice(&bytes)
            .map_err(|_| VapidKeyError::PrivateKey("not a P-256 private key (zero, or not below the group order)".into()))?;
        Ok(VapidKey { signing })
    }

    /// The private scalar, base64url without padding: for
    /// `passgate vapid-keys`, which prints it once.
    pub fn private_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.to_bytes())
    }

    /// The 65-byte uncompressed public point, base64url without padding:
    /// the `applicationServerKey`, and the `k` of every request.
    pub fn public_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_sec1_point(false).as_bytes())
    }

    /// A VAPID JWT (RFC 8292 §2): `{"typ":"JWT","alg":"ES256"}`, claims
    /// `aud`, `exp` (Unix seconds) and `sub`, and the JWS ES256 signature
    /// (raw r‖s, 64 bytes, not DER).
    pub(crate) fn token(&self, aud: &str, exp: u64, sub: &str) -> Result<String, SignatureError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = URL_SAFE_NO_PAD.encode(serde_json::json!({ "aud": aud, "exp": exp, "sub": sub }).to_string());
        let input = format!("{header}.{claims}");
        let signature: Signature = self.signing.try_sign(input.as_bytes())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes())))
    }

    /// The `Authorization` value for `token` (RFC 8292 §3).
    pub(crate) fn authorization(&self, token: &str) -> String {
        format!("vapid t={token}, k={}", self.public_base64url())
    }
}

/// `mailto:` with an address, or an `https:` URL with a host (Apple
/// refuses anything else): where a push service's operator can reach
/// the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapidSubject(String);

impl VapidSubject {
    pub fn parse(text: &str) -> Result<Self, VapidKeyError> {
        let refuse = |why: &str| Err(VapidKeyError::Subject(format!("{text:?} {why}")));
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return refuse("holds spaces or control characters");
        }
        if let Some(address) = text.strip_prefix("mailto:") {
            return match address.rsplit_once('@') {
                Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains(['/', '?', '#']) => {
                    Ok(VapidSubject(text.to_owned()))
                }
                _ => refuse("is not mailto: followed by an address"),
            };
        }
        match Url::parse(text) {
            Ok(url) if url.scheme() == "https" && url.host_str().is_some_and(|host| !host.is_empty()) => Ok(VapidSubject(text.to_owned())),
            _ => refuse("is neither mailto:<address> nor an https: URL"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a push did not go. Reasons never hold the payload or the
/// endpoint's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushFailure {
    /// 404 or 410: the subscription is dead (unsubscribed, expired, the
    /// app uninstalled). The caller deletes it; resending cannot work.
    #[error("the subscription is gone (the push service answered {status})")]
    Gone { status: u16 },
    /// Network, timeout, 408, 429, 5xx: try again, no sooner than `after`
    /// if the push service said so (capped at [`MAX_RETRY_AFTER`]).
    #[error("will retry: {reason}")]
    Retry { after: Option<Duration>, reason: String },
    /// Trying again would fail the same way (a refused VAPID key, a
    /// payload too large, a malformed request).
    #[error("failed for good: {reason}")]
    Permanent { reason: String },
}

/// The push sender: encrypts, signs VAPID, posts. Cheap to share behind
/// an `Arc`; one per VAPID key.
pub struct WebPush {
    client: HttpsClient,
    key: VapidKey,
    subject: VapidSubject,
    ttl: Duration,
}

/// `Debug` shows the public key and the subject, never the private key.
impl std::fmt::Debug for WebPush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPush").field("key", &self.key).field("subject", &self.subject).field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl WebPush {
    /// `ttl`: how long the push service keeps a message for a phone that
    /// is offline (RFC 8030 `TTL`); past it, the message is dropped.
    pub fn new(client: HttpsClient, key: VapidKey, subject: VapidSubject, ttl: Duration) -> Self {
        WebPush { client, key, subject, ttl }
    }

    /// Sends `payload` (at most [`MAX_PAYLOAD`] bytes) to `subscription`.
    /// Any 2xx (201 as a rule) → `Ok`. 404 or 410 → [`PushFailure::Gone`].
    /// 408, 429 and 5xx → `Retry` after `Retry-After` (capped at
    /// [`MAX_RETRY_AFTER`]). Any other status (400, 401, 403, 413…) →
    /// `Permanent`. No answer → `Retry`; a refused URL → `Permanent`.
    pub async fn send(&self, subscription: &PushSubscription, payload: &[u8]) -> Result<(), PushFailure> {
        let body = encrypt(subscription, payload)?;
        let now = SystemTime::now();
        let headers = self.headers(subscription, now)?;
        let response = self.client.post(subscription.endpoint(), &headers, body).await.map_err(|e| transport_failure(subscription, e))?;
        classify(&response, subscription, now)
    }

    fn headers(&self, subscription: &PushSubscription, now: SystemTime) -> Result<Vec<(HeaderName, HeaderValue)>, PushFailure> {
        let exp = unix_seconds(now).saturating_add(TOKEN_LIFETIME.as_secs());
        let token = self
            .key
            .token(&subscription.origin(), exp, self.subject.as_str())
            .map_err(|e| PushFailure::Permanent { reason: format!("signing the VAPID token: {e}") })?;
        // base64url and a URL from url::Url: always a valid header value.
        let authorization = HeaderValue::from_str(&self.key.authorization(&token))
            .map_err(|_| PushFailure::Permanent { reason: "the VAPID Authorization is not a header value".into() })?;
        Ok(vec![
            (AUTHORIZATION, authorization),
            (HeaderName::from_static("ttl"), HeaderValue::from(self.ttl.as_secs())),
            // A payment waits on it: deliver now, even on a phone saving power.
            (HeaderName::from_static("urgency"), HeaderValue::from_static("high")),
            (CONTENT_ENCODING, HeaderValue::from_static("aes128gcm")),
            (CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")),
        ])
    }
}

/// `payload` encrypted for `subscription` (RFC 8291, `aes128gcm`, one
/// record, a fresh sender key and salt each time).
pub(crate) fn encrypt(subscription: &PushSubscription, payload: &[u8]) -> Result<Vec<u8>, PushFailure> {
    if payload.len() > MAX_PAYLOAD {
        return Err(PushFailure::Permanent { reason: format!("the payload is {} bytes, more than {MAX_PAYLOAD}", payload.len()) });
    }
    // web-push-native is on p256 0.13: its own key type, from the bytes
    // already checked at parse time.
    let ua_public = web_push_native::p256::PublicKey::from_sec1_bytes(&subscription.p256dh)
        .map_err(|_| PushFailure::Permanent { reason: "p256dh is not a point on P-256".into() })?;
    let auth = web_push_native::Auth::from(subscription.auth);
    web_push_native::encrypt(payload.to_vec(), &ua_public, &auth)
        .map_err(|e| PushFailure::Permanent { reason: format!("encrypting the payload: {e}") })
}

/// No answer: the push may have gone, or not. Push messages are
/// idempotent to the user (the phone shows the same approval), so a
/// resend is safe. A refused URL is a subscription to drop, not a wait.
fn transport_failure(subscription: &PushSubscription, error: OutboundError) -> PushFailure {
    let reason = format!("push service {}: {error}", subscription.origin());
    match error {
        OutboundError::RefusedUrl(_) => PushFailure::Permanent { reason },
        OutboundError::Timeout(_) | OutboundError::Transport(_) | OutboundError::BodyTooLarge(_) => {
            PushFailure::Retry { after: None, reason }
        }
    }
}

fn classify(response: &OutboundResponse, subscription: &PushSubscription, now: SystemTime) -> Result<(), PushFailure> {
    let status = response.status;
    if status.is_success() {
        return Ok(());
    }
    let code = status.as_u16();
    if code == 404 || code == 410 {
        return Err(PushFailure::Gone { status: code });
    }
    let mut reason = format!("push service {} answered {status}", subscription.origin());
    let quoted = quote(&response.body, subscription);
    if !quoted.is_empty() {
        reason = format!("{reason}: {quoted}");
    }
    if status.is_server_error() || code == 429 || code == 408 {
        let after = response.retry_after(now).map(|after| after.min(MAX_RETRY_AFTER));
        Err(PushFailure::Retry { after, reason })
    } else {
        Err(PushFailure::Permanent { reason })
    }
}

/// The start of a push service's answer, which says why (a VAPID key
/// that does not match, a token refused), on one line, with the
/// endpoint's path taken out: services echo the subscription's token.
fn quote(body: &[u8], subscription: &PushSubscription) -> String {
    let mut text = String::from_utf8_lossy(body).into_owned();
    let path = subscription.endpoint.path();
    let segments = path.split('/').filter(|segment| segment.len() >= 8);
    for secret in std::iter::once(path).filter(|p| p.len() > 1).chain(segments) {
        text = text.replace(secret, "[endpoint]");
    }
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.trim();
    let mut cut: String = line.chars().take(MAX_QUOTED).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::mock::Reply;
    use crate::outbound::mock_push::MockPush;
    use crate::outbound::ClientOptions;

    const PAYLOAD: &[u8] = br#"{"approval":"01JAPPROVAL0000000000000001"}"#;
    const TTL: Duration = Duration::from_secs(300);

    fn client() -> HttpsClient {
        HttpsClient::new(&ClientOptions { timeout: Duration::from_secs(2), ..ClientOptions::default() }).unwrap()
    }

    fn sender(key: &VapidKey) -> WebPush {
        WebPush::new(client(), key.clone(), VapidSubject::parse("mailto:ops@bank.example").unwrap(), TTL)
    }

    /// A key, a strict mock push service that knows it, and a subscription.
    async fn setup() -> (VapidKey, MockPush, PushSubscription) {
        let key = VapidKey::generate();
        let mock = MockPush::start(&key.public_base64url()).await;
        let subscription = mock.subscribe();
        (key, mock, subscription)
    }

    fn a_point() -> String {
        VapidKey::generate().public_base64url()
    }

    #[test]
    fn only_the_listed_push_services_are_called() {
        let url = |s: &str| Url::parse(s).unwrap();
        let browsers = PushHosts::default();
        assert_eq!(PushHosts::parse(PushHosts::BROWSERS), Ok(browsers.clone()));
        for allowed in [
            "https://fcm.googleapis.com/fcm/send/abc",
            "https://updates.push.services.mozilla.com/wpush/v2/abc",
            "https://web.push.apple.com/QGx",
            "https://api.push.apple.com/3/device/abc",
            "https://wns2-par02p.notify.windows.com/w/?token=abc",
        ] {
            assert!(browsers.allows(&url(allowed)), "{allowed}");
        }
        for refused in [
            "https://10.0.0.5/admin",
            "https://internal.bank.example/x",
            "https://evilfcm.googleapis.com.attacker.example/x",
            "https://notify.windows.com/x",
            "https://xnotify.windows.com/x",
            "http://127.0.0.1:8080/push/1",
        ] {
            assert!(!browsers.allows(&url(refused)), "{refused}");
        }
        let test = PushHosts::parse("127.0.0.1, Push.Example.com").unwrap();
        assert!(test.allows(&url("http://127.0.0.1:4000/push/1")));
        assert!(test.allows(&url("https://push.example.com/x")));
        assert!(!test.allows(&url("https://a.push.example.com/x")));
        assert!(PushHosts::parse(" , ").is_err());
        assert!(PushHosts::parse("exa mple.com").is_err());
        assert!(PushHosts::parse("*.").is_err());
    }

    #[tokio::test]
    async fn sends_a_push_the_mock_decrypts_and_whose_vapid_it_accepts() {
        let (key, mock, subscription) = setup().await;
        sender(&key).send(&subscription, PAYLOAD).await.unwrap();
        assert_eq!(mock.delivered(), vec![(subscription.clone(), PAYLOAD.to_vec())], "refused: {:?}", mock.refusals());
        let claims = &mock.accepted_claims()[0];
        let port = subscription.endpoint().port().unwrap();
        assert_eq!(claims["aud"], format!("http://127.0.0.1:{port}"), "aud keeps the port");
        assert_eq!(claims["sub"], "mailto:ops@bank.example");
        let exp = claims["exp"].as_u64().unwrap();
        let now = unix_seconds(SystemTime::now());
        assert!((now + 12 * 3600 - 60..=now + 12 * 3600).contains(&exp), "exp is now + 12 h: {exp}");
        let request = &mock.recorded()[0];
        assert_eq!(request.header("ttl"), Some("300"));
        assert_eq!(request.header("urgency"), Some("high"));
        assert_eq!(request.header("content-encoding"), Some("aes128gcm"));
        assert_eq!(request.header("content-type"), Some("application/octet-stream"));
        assert!(!request.body.windows(PAYLOAD.len()).any(|w| w == PAYLOAD), "the body is encrypted");
    }

    #[tokio::test]
    async fn each_push_is_encrypted_afresh() {
        let (key, mock, subscription) = setup().await;
        let push = sender(&key);
        push.send(&subscription, PAYLOAD).await.unwrap();
        push.send(&subscription, PAYLOAD).await.unwrap();
        let recorded = mock.recorded();
        assert_ne!(recorded[0].body, recorded[1].body, "a new salt and sender key each time");
        assert_eq!(mock.delivered().len(), 2);
    }

    #[tokio::test]
    async fn another_vapid_key_is_refused_for_good() {
        let (_, mock, subscription) = setup().await;
        let failure = sender(&VapidKey::generate()).send(&subscription, PAYLOAD).await.unwrap_err();
        let PushFailure::Permanent { reason } = failure else { panic!("{failure:?}") };
        assert!(reason.contains("403") && reason.contains("applicationServerKey"), "{reason}");
        assert!(mock.delivered().is_empty());
    }

    #[tokio::test]
    async fn not_found_and_gone_mean_the_subscription_is_dead() {
        let (key, mock, subscription) = setup().await;
        mock.answer_next(vec![Reply::new(404), Reply::new(410)]);
        let push = sender(&key);
        assert_eq!(push.send(&subscription, PAYLOAD).await, Err(PushFailure::Gone { status: 404 }));
        assert_eq!(push.send(&subscription, PAYLOAD).await, Err(PushFailure::Gone { status: 410 }));
        assert_eq!(push.send(&subscription, PAYLOAD).await, Ok(()), "then back to 201");
        mock.forget(&subscription);
        assert_eq!(push.send(&subscription, PAYLOAD).await, Err(PushFailure::Gone { status: 410 }), "unsubscribed");
        assert_eq!(mock.requests(), 4);
    }

    #[tokio::test]
    async fn throttling_and_server_errors_are_retried_after_retry_after() {
        let (key, mock, subscription) = setup().await;
        mock.answer_next(vec![
            Reply::new(429).header("retry-after", "30"),
            Reply::new(500),
            Reply::new(503).header("retry-after", "86400"),
        ]);
        let push = sender(&key);
        let failure = push.send(&subscription, PAYLOAD).await.unwrap_err();
        let PushFailure::Retry { after, reason } = failure else { panic!("{failure:?}") };
        assert_eq!(after, Some(Duration::from_secs(30)));
        assert!(reason.contains("429"), "{reason}");
        assert!(matches!(push.send(&subscription, PAYLOAD).await, Err(PushFailure::Retry { after: None, .. })));
        assert!(matches!(push.send(&subscription, PAYLOAD).await, Err(PushFailure::Retry { after: Some(MAX_RETRY_AFTER), .. })), "capped");
    }

    #[tokio::test]
    async fn other_client_errors_are_final_and_reasons_hide_the_path() {
        let (key, mock, subscription) = setup().await;
        let path = subscription.endpoint().path().to_owned();
        let id = path.rsplit('/').next().unwrap().to_owned();
        let echo = format!("bad request for {path} (token {id})");
        mock.answer_next(vec![Reply::new(400).body(&echo), Reply::new(413).body("too large")]);
        let push = sender(&key);
        let failure = push.send(&subscription, PAYLOAD).await.unwrap_err();
        let PushFailure::Permanent { reason } = &failure else { panic!("{failure:?}") };
        assert!(reason.contains("400 Bad Request") && reason.contains("bad request for"), "quotes the answer: {reason}");
        assert!(!reason.contains(&id) && !failure.to_string().contains(&id), "{reason}");
        let failure = push.send(&subscription, PAYLOAD).await.unwrap_err();
        assert!(matches!(&failure, PushFailure::Permanent { reason } if reason.contains("413")), "{failure:?}");
    }

    #[tokio::test]
    async fn an_unreachable_push_service_is_retried() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let endpoint = format!("http://127.0.0.1:{port}/push/SECRETPATH");
        let subscription = PushSubscription::parse(&endpoint, &a_point(), &URL_SAFE_NO_PAD.encode([7u8; 16])).unwrap();
        let failure = sender(&VapidKey::generate()).send(&subscription, PAYLOAD).await.unwrap_err();
        let PushFailure::Retry { after: None, reason } = failure else { panic!("{failure:?}") };
        assert!(!reason.contains("SECRETPATH"), "{reason}");
    }

    #[tokio::test]
    async fn an_oversized_payload_is_refused_before_sending() {
        let (key, mock, subscription) = setup().await;
        let failure = sender(&key).send(&subscription, &[b'x'; MAX_PAYLOAD + 1]).await.unwrap_err();
        assert!(matches!(failure, PushFailure::Permanent { .. }), "{failure:?}");
        assert_eq!(mock.requests(), 0);
        sender(&key).send(&subscription, &[b'x'; MAX_PAYLOAD]).await.unwrap();
        assert_eq!(mock.recorded()[0].body.len(), 4096, "the largest payload fills the 4,096 bytes push services take");
    }

    #[test]
    fn a_subscription_round_trips_and_tolerates_padding() {
        let (p256dh, auth) = (a_point(), URL_SAFE_NO_PAD.encode([9u8; 16]));
        let endpoint = "https://fcm.googleapis.com/fcm/send/abc:DEF";
        let parsed = PushSubscription::parse(endpoint, &p256dh, &auth).unwrap();
        assert_eq!((parsed.endpoint().as_str(), parsed.p256dh(), parsed.auth()), (endpoint, p256dh.clone(), auth.clone()));
        let padded = PushSubscription::parse(endpoint, &format!("{p256dh}="), &format!("{auth}==")).unwrap();
        assert_eq!(padded, parsed);
    }

    #[test]
    fn bad_subscriptions_are_refused_with_the_field_and_why() {
        let (p256dh, auth) = (a_point(), URL_SAFE_NO_PAD.encode([9u8; 16]));
        let ok = "https://push.example.net/wpush/v2/abc";
        let refused = |endpoint: &str, p256dh: &str, auth: &str| PushSubscription::parse(endpoint, p256dh, auth).unwrap_err().to_string();
        let err = refused("http://push.example.net/wpush/v2/SECRET", &p256dh, &auth);
        assert!(err.starts_with("endpoint:") && err.contains("loopback") && !err.contains("SECRET"), "{err}");
        assert!(PushSubscription::parse("http://127.0.0.1:8080/push/x", &p256dh, &auth).is_ok(), "loopback http");
        let long = format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT_LEN));
        assert!(refused(&long, &p256dh, &auth).starts_with("endpoint:"));
        let just_fits = format!("https://push.example.net/{}", "a".repeat(MAX_ENDPOINT_LEN - 25));
        assert_eq!(just_fits.len(), MAX_ENDPOINT_LEN);
        assert!(PushSubscription::parse(&just_fits, &p256dh, &auth).is_ok());
        assert!(refused("https://user:pw@push.example.net/x", &p256dh, &auth).contains("credentials"));
        assert!(refused("push.example.net/x", &p256dh, &auth).starts_with("endpoint:"));
        let compressed = URL_SAFE_NO_PAD.encode([3u8; 33]);
        assert!(refused(ok, &compressed, &auth).contains("33 bytes, not 65"));
        let mut off_curve = URL_SAFE_NO_PAD.decode(&p256dh).unwrap();
        off_curve[64] ^= 1;
        assert_eq!(refused(ok, &URL_SAFE_NO_PAD.encode(&off_curve), &auth), "p256dh: not a point on P-256");
        let mut not_uncompressed = URL_SAFE_NO_PAD.decode(&p256dh).unwrap();
        not_uncompressed[0] = 0x05;
        assert!(refused(ok, &URL_SAFE_NO_PAD.encode(&not_uncompressed), &auth).contains("0x04"));
        assert_eq!(refused(ok, "not base64!", &auth), "p256dh: not base64url");
        assert_eq!(refused(ok, &p256dh, &URL_SAFE_NO_PAD.encode([9u8; 15])), "auth: 15 bytes, not 16");
    }

    #[test]
    fn debug_shows_the_endpoints_origin_only() {
        let auth = URL_SAFE_NO_PAD.encode([9u8; 16]);
        let subscription = PushSubscription::parse("https://push.example.net:8443/wpush/v2/SECRET", &a_point(), &auth).unwrap();
        let shown = format!("{subscription:?}");
        assert!(shown.contains("https://push.example.net:8443") && !shown.contains("SECRET"), "{shown}");
        assert!(!shown.contains(&auth), "{shown}");
    }

    #[test]
    fn vapid_subjects_are_mailto_addresses_or_https_urls() {
        for good in ["mailto:ops@bank.example", "https://bank.example/contact", "https://bank.example"] {
            assert_eq!(VapidSubject::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "mailto:",
            "mailto:ops",
            "mailto:@bank.example",
            "http://bank.example/contact",
            "ops@bank.example",
            "https://",
            "mailto: ops@b.example",
            "",
        ] {
            let err = VapidSubject::parse(bad).unwrap_err();
            assert!(matches!(err, VapidKeyError::Subject(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn a_vapid_key_round_trips_and_hides_its_private_half() {
        let key = VapidKey::generate();
        let private = key.private_base64url();
        let again = VapidKey::from_base64url(&private).unwrap();
        assert_eq!((again.private_base64url(), again.public_base64url()), (private.clone(), key.public_base64url()));
        assert_eq!(VapidKey::from_base64url(&format!("{private}=")).unwrap().public_base64url(), key.public_base64url());
        let public = URL_SAFE_NO_PAD.decode(key.public_base64url()).unwrap();
        assert_eq!((public.len(), public[0]), (65, 0x04));
        assert_ne!(VapidKey::generate().private_base64url(), private, "random");
        let shown = format!("{key:?}");
        assert!(!shown.contains(&private) && shown.contains(&key.public_base64url()), "{shown}");
    }

    #[test]
    fn bad_vapid_keys_are_refused_without_being_shown() {
        let short = URL_SAFE_NO_PAD.encode([1u8; 31]);
        assert_eq!(VapidKey::from_base64url(&short).unwrap_err(), VapidKeyError::PrivateKey("31 bytes, not 32".into()));
        let zero = URL_SAFE_NO_PAD.encode([0u8; 32]);
        assert!(matches!(VapidKey::from_base64url(&zero), Err(VapidKeyError::PrivateKey(_))));
        let order_or_more = URL_SAFE_NO_PAD.encode([0xffu8; 32]);
        let err = VapidKey::from_base64url(&order_or_more).unwrap_err();
        assert!(!err.to_string().contains(&order_or_more), "{err}");
    }

    #[test]
    fn web_push_native_decrypts_what_is_sent() {
        use web_push_native::p256 as p256_13;
        let secret = p256_13::SecretKey::from_slice(&[0x42u8; 32]).unwrap();
        let public = p256_13::EncodedPoint::from(secret.public_key());
        let auth = [5u8; 16];
        let subscription = PushSubscription::parse(
            "https://push.example.net/x",
            &URL_SAFE_NO_PAD.encode(public.as_bytes()),
            &URL_SAFE_NO_PAD.encode(auth),
        )
        .unwrap();
        let body = encrypt(&subscription, PAYLOAD).unwrap();
        let plain = web_push_native::decrypt(body, &secret, &web_push_native::Auth::from(auth)).unwrap();
        assert_eq!(plain, PAYLOAD);
    }
}
