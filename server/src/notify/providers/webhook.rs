//! The webhook provider: each SMS is POSTed as JSON to the operator's own
//! gateway, which sends it however it likes.
//!
//! ```text
//! POST <PASSGATE_SMS_WEBHOOK_URL>
//! Content-Type: application/json
//! Idempotency-Key: <id>
//! X-Passgate-Timestamp: <unix seconds>
//! X-Passgate-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>
//!
//! {"id": "<id>", "to": "+33612345678", "body": "…"}
//! ```
//!
//! `id` is the outbox row's id, the same on every attempt: a receiver that
//! already took it answers 2xx again and sends nothing (Passgate may
//! resend after a timeout or a crash). A receiver checks, before reading
//! the JSON: the signature, computed over the timestamp header, a `.` and
//! the body's raw bytes, with the shared secret (its UTF-8 bytes, 32 to
//! 64 of them) as the HMAC key, compared in constant time; and that the
//! timestamp is within a few minutes of its clock (a captured request
//! cannot be replayed later). [`verify_signature`] does both. The header
//! may list several comma-separated `v1=` values; any one matching is
//! enough (room to rotate the secret).
//!
//! The answer: 2xx = taken (a JSON `{"id": "…"}` names the gateway's own
//! id); 408, 429 (with `Retry-After`) and 5xx = try later; anything else =
//! refused for good.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use hmac::Mac;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use url::Url;

use super::{status_failure, transport_failure, SendFailure, Sent, SmsProvider, SmsToSend};
use crate::outbound::{check_url, HttpsClient};
use crate::token::hmac_sha256;

/// The shortest and longest secrets: 256 bits at least; one SHA-256 block
/// at most, so the key is used as is by every HMAC implementation.
pub(crate) const SECRET_LEN: std::ops::RangeInclusive<usize> = 32..=64;

const NAME: &str = "sms webhook";

pub struct WebhookProvider {
    client: HttpsClient,
    url: Url,
    secret: Vec<u8>,
}

/// `Debug` shows where, never the secret.
impl std::fmt::Debug for WebhookProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookProvider").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

impl WebhookProvider {
    /// Refuses a URL the client would not call, and a secret outside
    /// 32..=64 bytes.
    pub fn new(client: HttpsClient, url: Url, secret: &str) -> anyhow::Result<Self> {
        check_url(&url)?;
        if !SECRET_LEN.contains(&secret.len()) {
            anyhow::bail!("the webhook secret must be 32 to 64 bytes, not {}", secret.len());
        }
        Ok(WebhookProvider { client, url, secret: secret.as_bytes().to_vec() })
    }

    fn headers(&self, message: &SmsToSend, timestamp: u64, body: &[u8]) -> Result<Vec<(HeaderName, HeaderValue)>, SendFailure> {
        let id = HeaderValue::from_str(&message.id)
            .map_err(|_| SendFailure::Permanent { reason: format!("{NAME}: the id {:?} is not a header value", message.id) })?;
        Ok(vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (HeaderName::from_static("idempotency-key"), id),
            (HeaderName::from_static("x-passgate-timestamp"), HeaderValue::from(timestamp)),
            (HeaderName::from_static("x-passgate-signature"), header_value(&sign(&self.secret, timestamp, body))),
        ])
    }
}

#[async_trait]
impl SmsProvider for WebhookProvider {
    async fn send(&self, message: &SmsToSend) -> Result<Sent, SendFailure> {
        let body = serde_json::json!({ "id": message.id, "to": message.to.as_str(), "body": message.body }).to_string().into_bytes();
        let timestamp = unix_seconds(SystemTime::now());
        let headers = self.headers(message, timestamp, &body)?;
        let response = self.client.post(&self.url, &headers, body).await.map_err(|e| transport_failure(NAME, e))?;
        if !response.status.is_success() {
            return Err(status_failure(&response, format!("{NAME} answered {}", response.status)));
        }
        let provider_id = serde_json::from_slice::<serde_json::Value>(&response.body)
            .ok()
            .and_then(|answer| answer.get("id")?.as_str().map(str::to_owned));
        Ok(Sent { provider_id })
    }
}

/// The `X-Passgate-Signature` value for `body` sent at `timestamp`:
/// `v1=` and the hex HMAC-SHA256 of `"<timestamp>." + body`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    let mac = signing_mac(secret, &timestamp.to_string(), body);
    format!("v1={}", hex(&mac.finalize().into_bytes()))
}

/// What a receiver runs: true if `header` (`X-Passgate-Signature`) holds
/// a `v1=` signature of `timestamp` (`X-Passgate-Timestamp`) and `body`
/// (the raw bytes received) under `secret`, and `timestamp` is within
/// `tolerance` of `now`. Constant-time; a secret over 64 bytes never matches.
pub fn verify_signature(secret: &[u8], timestamp: &str, body: &[u8], header: &str, now: SystemTime, tolerance: Duration) -> bool {
    let Ok(sent) = timestamp.parse::<u64>() else { return false };
    if secret.len() > *SECRET_LEN.end() || unix_seconds(now).abs_diff(sent) > tolerance.as_secs() {
        return false;
    }
    header.split(',').filter_map(|part| part.trim().strip_prefix("v1=")).filter_map(unhex).any(|signature| {
        // Each candidate gets its own MAC: verify_slice consumes it.
        signing_mac(secret, timestamp, body).verify_slice(&signature).is_ok()
    })
}

fn signing_mac(secret: &[u8], timestamp: &str, body: &[u8]) -> hmac::Hmac<sha2::Sha256> {
    let mut mac = hmac_sha256(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Hex is always a valid header value.
fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{client, closed_port, message, SECRET_BODY};
    use super::*;
    use crate::outbound::mock::{MockProvider, Recorded, Reply};

    const SECRET: &str = "0123456789abcdef0123456789abcdef-webhook";
    const TOLERANCE: Duration = Duration::from_secs(300);

    /// A receiver as the module doc tells integrators to write one.
    fn receiver(secret: &'static str) -> impl Fn(&Recorded) -> Reply {
        move |request| {
            let timestamp = request.header("x-passgate-timestamp").unwrap_or("");
            let signature = request.header("x-passgate-signature").unwrap_or("");
            if verify_signature(secret.as_bytes(), timestamp, &request.body, signature, SystemTime::now(), TOLERANCE) {
                Reply::new(200).json(&serde_json::json!({ "id": "gw-42" }))
            } else {
                Reply::new(401).body("bad signature")
            }
        }
    }

    fn provider(url: Url) -> WebhookProvider {
        WebhookProvider::new(client(), url, SECRET).unwrap()
    }

    #[tokio::test]
    async fn posts_signed_json_with_the_id_as_idempotency_key() {
        let mock = MockProvider::start(receiver(SECRET)).await;
        let sent = provider(mock.url("/sms")).send(&message()).await.unwrap();
        assert_eq!(sent.provider_id.as_deref(), Some("gw-42"), "the receiver verified the signature");
        let request = &mock.requests()[0];
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/sms"));
        assert_eq!(request.header("idempotency-key"), Some(message().id.as_str()));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(json, serde_json::json!({ "id": message().id, "to": "+33612345678", "body": SECRET_BODY }));
    }

    #[tokio::test]
    async fn a_receiver_with_another_secret_refuses_it_for_good() {
        let mock = MockProvider::start(receiver("another-secret-another-secret-another")).await;
        let failure = provider(mock.url("/sms")).send(&message()).await.unwrap_err();
        let SendFailure::Permanent { reason } = failure else { panic!("{failure:?}") };
        assert!(reason.contains("401") && !reason.contains("SECRETLINK"), "{reason}");
    }

    #[test]
    fn signatures_are_refused_when_stale_tampered_or_under_another_secret() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let (ts, body) = (1_700_000_000u64, br#"{"id":"x"}"#);
        let header = sign(SECRET.as_bytes(), ts, body);
        let ok =
            |secret: &str, ts: &str, body: &[u8], header: &str, now| verify_signature(secret.as_bytes(), ts, body, header, now, TOLERANCE);
        assert!(ok(SECRET, &ts.to_string(), body, &header, now));
        assert!(ok(SECRET, &ts.to_string(), body, &format!("v1=00ff, {header}"), now), "any listed signature");
        assert!(!ok("a-wrong-secret-a-wrong-secret-a-wrong", &ts.to_string(), body, &header, now));
        assert!(!ok(SECRET, &ts.to_string(), body, &header, now + Duration::from_secs(301)), "stale");
        assert!(!ok(SECRET, &ts.to_string(), body, &header, now - Duration::from_secs(301)), "from the future");
        assert!(!ok(SECRET, &(ts + 1).to_string(), body, &header, now), "timestamp is signed");
        assert!(!ok(SECRET, &ts.to_string(), br#"{"id":"y"}"#, &header, now), "body is signed");
        assert!(!ok(SECRET, &ts.to_string(), body, &header.replace("v1=", "v0="), now));
        assert!(!ok(SECRET, &ts.to_string(), body, "", now));
    }

    #[test]
    fn the_signature_is_plain_hmac_sha256_over_timestamp_dot_body() {
        // RFC 4231 test case 2 shape: any HMAC library gets the same value.
        let header = sign(b"Jefe", 0, b"what do ya want for nothing?");
        let expected = {
            let mut mac = hmac_sha256(b"Jefe");
            mac.update(b"0.what do ya want for nothing?");
            format!("v1={}", hex(&mac.finalize().into_bytes()))
        };
        assert_eq!(header, expected);
        assert_eq!(
            hex(&hmac_sha256(b"Jefe").chain_update(b"what do ya want for nothing?").finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[tokio::test]
    async fn server_errors_and_throttling_are_retried_after_retry_after() {
        let mock = MockProvider::scripted(vec![Reply::new(500), Reply::new(429).header("retry-after", "30")]).await;
        let provider = provider(mock.url("/sms"));
        let failure = provider.send(&message()).await.unwrap_err();
        assert!(matches!(failure, SendFailure::Retry { after: None, .. }), "{failure:?}");
        let failure = provider.send(&message()).await.unwrap_err();
        assert_eq!(
            failure,
            SendFailure::Retry { after: Some(Duration::from_secs(30)), reason: "sms webhook answered 429 Too Many Requests".into() }
        );
    }

    #[tokio::test]
    async fn an_unreachable_gateway_is_retried() {
        let url = Url::parse(&format!("http://127.0.0.1:{}/sms", closed_port().await)).unwrap();
        let failure = provider(url).send(&message()).await.unwrap_err();
        let SendFailure::Retry { reason, .. } = failure else { panic!("{failure:?}") };
        assert!(!reason.contains("SECRETLINK"), "{reason}");
    }

    #[test]
    fn cleartext_to_another_host_and_short_secrets_are_refused() {
        let err = WebhookProvider::new(client(), Url::parse("http://sms.example.com/hook").unwrap(), SECRET).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let err = WebhookProvider::new(client(), Url::parse("https://sms.example.com/hook").unwrap(), "short").unwrap_err();
        assert!(err.to_string().contains("32 to 64"), "{err}");
        let shown = format!("{:?}", provider(Url::parse("https://sms.example.com/hook").unwrap()));
        assert!(!shown.contains(SECRET), "{shown}");
    }
}
