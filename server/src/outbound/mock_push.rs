//! A strict mock push service for tests (RFC 8030/8291/8292), on
//! [`MockProvider`]: it checks what real push services check, so a test
//! that passes here is not passing by leniency.
//!
//! - [`MockPush::subscribe`] plays the browser: a fresh P-256 key pair
//!   and auth secret, and an endpoint `http://127.0.0.1:PORT/push/<id>`.
//! - Each POST to a known endpoint must carry `Content-Encoding:
//!   aes128gcm`, `TTL` and `Urgency` (optional in RFC 8030, required here
//!   to hold the sender to sending it) and at most 4,096 bytes (else 400
//!   or 413), and `Authorization: vapid t=…, k=…` where `k` is the
//!   applicationServerKey given to [`MockPush::start`] (else 403) and `t`
//!   an ES256 JWT signed by it, whose `aud` is this service's origin with
//!   its port, `exp` in the future and at most 24 h ahead, `sub` a
//!   `mailto:` or `https:` URL (else 401). Every refusal answers its
//!   reason as the body, and is kept ([`MockPush::refusals`]).
//! - The body is decrypted by this module's own RFC 8291 code (p256 0.14
//!   ECDH, hkdf, aes-gcm; not web-push-native, which the sender uses), as
//!   the phone would; a body it cannot decrypt is refused (400).
//! - Then it answers 201 with a `Location`, and the payload is
//!   [`MockPush::delivered`]; or the next scripted answer
//!   ([`MockPush::answer_next`]), which delivers nothing. An unknown
//!   endpoint answers 404, a [`MockPush::forget`]-ten one 410.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::Generate as _;
use sha2::Sha256;

use super::mock::{MockProvider, Recorded, Reply};
use crate::notify::webpush::PushSubscription;

/// The most of a body push services take.
const MAX_BODY: usize = 4096;
/// The longest VAPID token lifetime accepted (Apple's, the strictest).
const MAX_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// One browser the mock made: its private key decrypts.
struct Subscriber {
    subscription: PushSubscription,
    secret: p256::SecretKey,
    auth: [u8; 16],
}

#[derive(Default)]
struct State {
    subscribers: HashMap<String, Arc<Subscriber>>,
    forgotten: HashSet<String>,
    script: VecDeque<Reply>,
    delivered: Vec<(PushSubscription, Vec<u8>)>,
    claims: Vec<serde_json::Value>,
    refusals: Vec<String>,
    attempts: usize,
}

struct Shared {
    state: Mutex<State>,
    /// `http://127.0.0.1:PORT`: the only `aud` accepted. Set once the
    /// listener has its port.
    origin: OnceLock<String>,
    application_server_key: Vec<u8>,
}

/// The running mock push service; stops when dropped.
pub struct MockPush {
    provider: MockProvider,
    shared: Arc<Shared>,
}

impl MockPush {
    /// A push service whose subscriptions were made with
    /// `application_server_key` (base64url, the VAPID public key).
    pub async fn start(application_server_key: &str) -> Self {
        let application_server_key = URL_SAFE_NO_PAD.decode(application_server_key.trim_end_matches('=')).unwrap();
        let shared = Arc::new(Shared { state: Mutex::default(), origin: OnceLock::new(), application_server_key });
        let handler_shared = shared.clone();
        let provider = MockProvider::start(move |request| handler_shared.handle(request)).await;
        shared.origin.set(provider.base().origin().ascii_serialization()).unwrap();
        MockPush { provider, shared }
    }

    /// Subscribes a new browser: what `pushManager.subscribe()` returns.
    pub fn subscribe(&self) -> PushSubscription {
        let secret = p256::SecretKey::generate();
        let auth: [u8; 16] = rand::random();
        let id: String = rand::random::<[u8; 16]>().iter().map(|b| format!("{b:02x}")).collect();
        let endpoint = self.provider.url(&format!("/push/{id}"));
        let p256dh = URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_bytes());
        let subscription = PushSubscription::parse(endpoint.as_str(), &p256dh, &URL_SAFE_NO_PAD.encode(auth)).unwrap();
        let subscriber = Subscriber { subscription: subscription.clone(), secret, auth };
        self.shared.state.lock().unwrap().subscribers.insert(id, Arc::new(subscriber));
        subscription
    }

    /// Unsubscribes: its endpoint answers 410 from now on.
    pub fn forget(&self, subscription: &PushSubscription) {
        let id = endpoint_id(subscription.endpoint().path()).unwrap().to_owned();
        let mut state = self.shared.state.lock().unwrap();
        state.subscribers.remove(&id);
        state.forgotten.insert(id);
    }

    /// The next requests that pass every check get these answers in
    /// turn, and deliver nothing; then back to 201.
    pub fn answer_next(&self, replies: Vec<Reply>) {
        self.shared.state.lock().unwrap().script.extend(replies);
    }

    /// What was delivered, in order: the subscription, and the payload
    /// as decrypted by this module's own RFC 8291 code.
    pub fn delivered(&self) -> Vec<(PushSubscription, Vec<u8>)> {
        self.shared.state.lock().unwrap().delivered.clone()
    }

    /// The claims of each delivered push's VAPID token.
    pub fn accepted_claims(&self) -> Vec<serde_json::Value> {
        self.shared.state.lock().unwrap().claims.clone()
    }

    /// Why each refused request was refused, in order.
    pub fn refusals(&self) -> Vec<String> {
        self.shared.state.lock().unwrap().refusals.clone()
    }

    /// How many requests came, whatever their fate.
    pub fn requests(&self) -> usize {
        self.shared.state.lock().unwrap().attempts
    }

    /// Every request as received (headers, encrypted body).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.provider.requests()
    }

    /// `http://127.0.0.1:PORT`, the `aud` tokens must name.
    pub fn origin(&self) -> String {
        self.shared.origin.get().cloned().unwrap_or_default()
    }
}

/// A request refused: the status, and why.
type Refusal = (u16, String);

impl Shared {
    fn handle(&self, request: &Recorded) -> Reply {
        let mut state = self.state.lock().unwrap();
        state.attempts += 1;
        let Some(id) = endpoint_id(&request.path) else { return Reply::new(404).body("no such endpoint") };
        if state.forgotten.contains(id) {
            return Reply::new(410).body("unsubscribed");
        }
        let Some(subscriber) = state.subscribers.get(id).cloned() else { return Reply::new(404).body("no such subscription") };
        match self.check(request, &subscriber) {
            Err((status, reason)) => {
                state.refusals.push(reason.clone());
                Reply::new(status).body(&reason)
            }
            Ok((claims, payload)) => {
                if let Some(reply) = state.script.pop_front() {
                    return reply;
                }
                state.delivered.push((subscriber.subscription.clone(), payload));
                state.claims.push(claims);
                let location = format!("/message/{}", state.delivered.len());
                Reply::new(201).header("location", &location)
            }
        }
    }

    /// Every check of the module doc, in order; the token's claims and
    /// the decrypted payload if all pass.
    fn check(&self, request: &Recorded, subscriber: &Subscriber) -> Result<(serde_json::Value, Vec<u8>), Refusal> {
        let bad = |why: &str| Err((400, why.to_owned()));
        if request.method != "POST" {
            return Err((405, "POST only".into()));
        }
        if request.header("content-encoding") != Some("aes128gcm") {
            return bad("Content-Encoding must be aes128gcm");
        }
        if request.header("ttl").and_then(|ttl| ttl.trim().parse::<u64>().ok()).is_none() {
            return bad("a TTL header (seconds) is required");
        }
        if !matches!(request.header("urgency"), Some("very-low" | "low" | "normal" | "high")) {
            return bad("an Urgency header (very-low, low, normal or high) is required");
        }
        if request.body.len() > MAX_BODY {
            return Err((413, format!("the body is over {MAX_BODY} bytes")));
        }
        let claims = self.check_vapid(request.header("authorization"))?;
        let payload = decrypt(&request.body, &subscriber.secret, &subscriber.auth).map_err(|why| (400, format!("undecryptable: {why}")))?;
        Ok((claims, payload))
    }

    fn check_vapid(&self, authorization: Option<&str>) -> Result<serde_json::Value, Refusal> {
        let unauthorized = |why: String| (401, why);
        let (token, k) =
            parse_vapid(authorization.unwrap_or("")).ok_or_else(|| unauthorized("Authorization: vapid t=…, k=… is required".into()))?;
        let k = URL_SAFE_NO_PAD.decode(k).map_err(|_| unauthorized("k is not base64url".into()))?;
        if k != self.application_server_key {
            return Err((403, "k is not the applicationServerKey the subscription was made with".into()));
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, claims, signature] = parts[..] else { return Err(unauthorized("t is not a JWS (header.claims.signature)".into())) };
        let header = json_part(header).ok_or_else(|| unauthorized("the JWT header is not base64url JSON".into()))?;
        if header["alg"] != "ES256" || !matches!(header.get("typ"), None | Some(serde_json::Value::String(_))) {
            return Err(unauthorized(format!("the JWT header must say alg ES256, not {header}")));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(|| unauthorized("the JWT signature is not 64 bytes of r‖s".into()))?;
        let key = VerifyingKey::from_sec1_bytes(&self.application_server_key).map_err(|_| unauthorized("no usable key".into()))?;
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .map_err(|_| unauthorized("the JWT signature does not verify with k".into()))?;
        let claims = json_part(claims).ok_or_else(|| unauthorized("the JWT claims are not base64url JSON".into()))?;
        let origin = self.origin.get().map(String::as_str).unwrap_or("");
        if claims["aud"] != origin {
            return Err(unauthorized(format!("aud {} is not this push service's origin {origin}", claims["aud"])));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        match claims["exp"].as_u64() {
            Some(exp) if exp <= now => return Err(unauthorized(format!("the token expired (exp {exp}, now {now})"))),
            Some(exp) if exp > now + MAX_LIFETIME_SECS => return Err(unauthorized(format!("exp {exp} is more than 24 h ahead"))),
            Some(_) => {}
            None => return Err(unauthorized("exp (Unix seconds) is required".into())),
        }
        let sub = claims["sub"].as_str().unwrap_or("");
        if !is_contact(sub) {
            return Err(unauthorized(format!("sub {sub:?} is neither mailto:<address> nor an https: URL")));
        }
        Ok(claims)
    }
}

/// `<id>` of `/push/<id>`.
fn endpoint_id(path: &str) -> Option<&str> {
    path.strip_prefix("/push/").filter(|id| !id.is_empty() && !id.contains(['/', '?']))
}

/// `vapid t=<token>, k=<key>` (RFC 8292 §3): the parameters in any
/// order, the scheme in any case.
fn parse_vapid(header: &str) -> Option<(&str, &str)> {
    let (scheme, params) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return None;
    }
    let (mut t, mut k) = (None, None);
    for param in params.split(',') {
        match param.trim().split_once('=')? {
            ("t", value) => t = Some(value),
            ("k", value) => k = Some(value.trim_end_matches('=')),
            _ => return None,
        }
    }
    Some((t?, k?))
}

fn json_part(part: &str) -> Option<serde_json::Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// RFC 8292 §2.1's contact, checked here without the sender's parser.
fn is_contact(sub: &str) -> bool {
    if let Some(address) = sub.strip_prefix("mailto:") {
        return address.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    }
    url::Url::parse(sub).is_ok_and(|url| url.scheme() == "https" && url.host_str().is_some_and(|h| !h.is_empty()))
}

/// RFC 8291 §3–4 and RFC 8188 §2, as the phone runs them: the body's
/// header (salt, record size, the sender's public key as key id), ECDH
/// with the UA's private key, the two HKDF steps, then each record
/// opened with AES-128-GCM and its padding and delimiter removed.
pub fn decrypt(body: &[u8], ua_secret: &p256::SecretKey, auth: &[u8; 16]) -> Result<Vec<u8>, String> {
    let header = body.get(..21).ok_or("shorter than the aes128gcm header")?;
    let (salt, rs, idlen) = (&header[..16], u32::from_be_bytes(header[16..20].try_into().unwrap()), usize::from(header[20]));
    if rs < 18 {
        return Err(format!("record size {rs} is under 18"));
    }
    if idlen != 65 {
        return Err(format!("the key id is {idlen} bytes, not a 65-byte uncompressed point"));
    }
    let as_public_bytes = body.get(21..21 + idlen).ok_or("truncated key id")?;
    let as_public = p256::PublicKey::from_sec1_bytes(as_public_bytes).map_err(|_| "the key id is not a P-256 point")?;
    let shared = p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), as_public.as_affine());
    let ua_public = ua_secret.public_key().to_sec1_bytes();
    let mut ikm = [0u8; 32];
    let info = [&b"WebPush: info\0"[..], &ua_public, as_public_bytes].concat();
    Hkdf::<Sha256>::new(Some(auth), &shared.raw_secret_bytes()[..]).expand(&info, &mut ikm).map_err(|e| e.to_string())?;
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let (mut cek, mut base_nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).map_err(|e| e.to_string())?;
    prk.expand(b"Content-Encoding: nonce\0", &mut base_nonce).map_err(|e| e.to_string())?;
    let cipher = Aes128Gcm::new_from_slice(&cek).map_err(|e| e.to_string())?;
    let records: Vec<&[u8]> = body[21 + idlen..].chunks(rs as usize).collect();
    if records.is_empty() {
        return Err("no record".into());
    }
    let mut plaintext = Vec::new();
    for (seq, record) in records.iter().enumerate() {
        // The nonce of record `seq` is the base nonce XOR seq (RFC 8188 §2.3).
        let mut nonce = base_nonce;
        for (byte, seq_byte) in nonce[4..].iter_mut().zip((seq as u64).to_be_bytes()) {
            *byte ^= seq_byte;
        }
        let mut opened = cipher.decrypt(&Nonce::from(nonce), *record).map_err(|_| format!("record {seq} does not decrypt"))?;
        let last = seq + 1 == records.len();
        while opened.last() == Some(&0) {
            opened.pop();
        }
        match (opened.pop(), last) {
            (Some(2), true) | (Some(1), false) => plaintext.extend_from_slice(&opened),
            (delimiter, _) => return Err(format!("record {seq} ends with delimiter {delimiter:?} (last: {last})")),
        }
    }
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::webpush::{encrypt, VapidKey};
    use crate::outbound::{ClientOptions, HttpsClient};
    use hyper::header::{HeaderName, HeaderValue};
    use std::time::Duration;

    // RFC 8291 Appendix A.
    const WATERMELON: &[u8] = b"When I grow up, I want to be a watermelon";
    const MESSAGE: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
    const UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
    const AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    #[test]
    fn the_independent_decryptor_reads_rfc_8291_appendix_a() {
        let ua_secret = p256::SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        let auth: [u8; 16] = b64(AUTH).try_into().unwrap();
        assert_eq!(decrypt(&b64(MESSAGE), &ua_secret, &auth).unwrap(), WATERMELON);
        let mut tampered = b64(MESSAGE);
        *tampered.last_mut().unwrap() ^= 1;
        assert!(decrypt(&tampered, &ua_secret, &auth).is_err(), "the tag is checked");
        let wrong_auth = [0u8; 16];
        assert!(decrypt(&b64(MESSAGE), &ua_secret, &wrong_auth).is_err(), "auth is an input");
    }

    #[test]
    fn web_push_native_agrees_on_appendix_a() {
        let ua_secret = web_push_native::p256::SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        let auth = web_push_native::Auth::clone_from_slice(&b64(AUTH));
        assert_eq!(web_push_native::decrypt(b64(MESSAGE), &ua_secret, &auth).unwrap(), WATERMELON);
    }

    #[test]
    fn the_independent_decryptor_reads_several_records_and_padding() {
        // Two padded records of rs = 24, sealed with aes-gcm directly from
        // the Appendix A keys: checks the nonce sequence and delimiters.
        let ua_secret = p256::SecretKey::from_slice(&b64(UA_PRIVATE)).unwrap();
        let auth: [u8; 16] = b64(AUTH).try_into().unwrap();
        let message = b64(MESSAGE);
        let header = &message[..86];
        let as_public = &message[21..86];
        let shared =
            p256::ecdh::diffie_hellman(ua_secret.to_nonzero_scalar(), p256::PublicKey::from_sec1_bytes(as_public).unwrap().as_affine());
        let info = [&b"WebPush: info\0"[..], &ua_secret.public_key().to_sec1_bytes(), as_public].concat();
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&auth), &shared.raw_secret_bytes()[..]).expand(&info, &mut ikm).unwrap();
        let prk = Hkdf::<Sha256>::new(Some(&message[..16]), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce).unwrap();
        let cipher = Aes128Gcm::new_from_slice(&cek).unwrap();
        let rs = 16 + 8;
        let mut body = header.to_vec();
        body[16..20].copy_from_slice(&(rs as u32).to_be_bytes());
        for (seq, chunk) in [&b"abcdef"[..], b"gh"].iter().enumerate() {
            let mut record = chunk.to_vec();
            record.push(if seq == 1 { 2 } else { 1 });
            record.resize(rs - 16, 0);
            let mut n = nonce;
            n[11] ^= seq as u8;
            body.extend(cipher.encrypt(&Nonce::from(n), record.as_slice()).unwrap());
        }
        assert_eq!(decrypt(&body, &ua_secret, &auth).unwrap(), b"abcdefgh");
    }

    /// One request to the mock, built by hand so each test changes one thing.
    struct Attempt {
        aud: String,
        exp: u64,
        sub: String,
        signer: VapidKey,
        k: String,
        skip: Option<&'static str>,
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    async fn started() -> (VapidKey, MockPush, PushSubscription) {
        let key = VapidKey::generate();
        let mock = MockPush::start(&key.public_base64url()).await;
        let subscription = mock.subscribe();
        (key, mock, subscription)
    }

    fn valid(key: &VapidKey, mock: &MockPush) -> Attempt {
        Attempt {
            aud: mock.origin(),
            exp: now() + 3600,
            sub: "mailto:ops@bank.example".into(),
            signer: key.clone(),
            k: key.public_base64url(),
            skip: None,
        }
    }

    async fn post(subscription: &PushSubscription, attempt: &Attempt, token: Option<String>) -> (u16, String) {
        let token = token.unwrap_or_else(|| attempt.signer.token(&attempt.aud, attempt.exp, &attempt.sub).unwrap());
        let headers: Vec<(HeaderName, HeaderValue)> = [
            ("authorization", format!("vapid t={token}, k={}", attempt.k)),
            ("ttl", "60".into()),
            ("urgency", "high".into()),
            ("content-encoding", "aes128gcm".into()),
        ]
        .into_iter()
        .filter(|(name, _)| Some(*name) != attempt.skip)
        .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_str(&value).unwrap()))
        .collect();
        let client = HttpsClient::new(&ClientOptions { timeout: Duration::from_secs(2), ..ClientOptions::default() }).unwrap();
        let body = encrypt(subscription, b"hello").unwrap();
        let response = client.post(subscription.endpoint(), &headers, body).await.unwrap();
        (response.status.as_u16(), String::from_utf8_lossy(&response.body).into_owned())
    }

    #[tokio::test]
    async fn a_hand_built_valid_request_is_delivered() {
        let (key, mock, subscription) = started().await;
        let (status, body) = post(&subscription, &valid(&key, &mock), None).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(mock.delivered(), vec![(subscription, b"hello".to_vec())]);
        assert!(mock.origin().starts_with("http://127.0.0.1:"), "{}", mock.origin());
    }

    #[tokio::test]
    async fn an_aud_without_the_port_is_refused() {
        let (key, mock, subscription) = started().await;
        let attempt = Attempt { aud: "http://127.0.0.1".into(), ..valid(&key, &mock) };
        let (status, body) = post(&subscription, &attempt, None).await;
        assert_eq!(status, 401);
        assert!(body.contains("aud"), "{body}");
        assert!(mock.delivered().is_empty());
    }

    #[tokio::test]
    async fn expired_and_too_long_lived_tokens_are_refused() {
        let (key, mock, subscription) = started().await;
        let expired = Attempt { exp: now() - 1, ..valid(&key, &mock) };
        let (status, body) = post(&subscription, &expired, None).await;
        assert_eq!((status, body.contains("expired")), (401, true), "{body}");
        let too_long = Attempt { exp: now() + 25 * 3600, ..valid(&key, &mock) };
        let (status, body) = post(&subscription, &too_long, None).await;
        assert_eq!((status, body.contains("24 h")), (401, true), "{body}");
        assert_eq!(mock.refusals().len(), 2);
    }

    #[tokio::test]
    async fn a_k_that_is_not_the_application_server_key_is_refused() {
        let (key, mock, subscription) = started().await;
        let other = VapidKey::generate();
        // Consistent in itself (signed by the key it names), but not the key subscribed with.
        let attempt = Attempt { signer: other.clone(), k: other.public_base64url(), ..valid(&key, &mock) };
        let (status, body) = post(&subscription, &attempt, None).await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("applicationServerKey"), "{body}");
    }

    #[tokio::test]
    async fn a_bad_signature_is_refused() {
        let (key, mock, subscription) = started().await;
        // Signed by another key while naming the right one.
        let forged = Attempt { signer: VapidKey::generate(), ..valid(&key, &mock) };
        let (status, body) = post(&subscription, &forged, None).await;
        assert_eq!((status, body.contains("signature")), (401, true), "{body}");
        // The right key's signature, moved onto other claims.
        let attempt = valid(&key, &mock);
        let genuine = key.token(&attempt.aud, attempt.exp, &attempt.sub).unwrap();
        let other = key.token(&attempt.aud, attempt.exp + 1, &attempt.sub).unwrap();
        let (signed, _) = other.rsplit_once('.').unwrap();
        let spliced = format!("{signed}.{}", genuine.rsplit_once('.').unwrap().1);
        let (status, body) = post(&subscription, &attempt, Some(spliced)).await;
        assert_eq!((status, body.contains("signature")), (401, true), "{body}");
        assert!(mock.delivered().is_empty());
    }

    #[tokio::test]
    async fn a_sub_that_is_no_contact_is_refused() {
        let (key, mock, subscription) = started().await;
        for sub in ["ops@bank.example", "http://bank.example", "mailto:"] {
            let attempt = Attempt { sub: sub.into(), ..valid(&key, &mock) };
            let (status, body) = post(&subscription, &attempt, None).await;
            assert_eq!((status, body.contains("sub")), (401, true), "{sub}: {body}");
        }
    }

    #[tokio::test]
    async fn missing_headers_are_refused() {
        let (key, mock, subscription) = started().await;
        for skipped in ["authorization", "ttl", "urgency", "content-encoding"] {
            let attempt = Attempt { skip: Some(skipped), ..valid(&key, &mock) };
            let (status, body) = post(&subscription, &attempt, None).await;
            assert!(status == 400 || status == 401, "{skipped}: {status} {body}");
        }
        assert_eq!((mock.requests(), mock.refusals().len(), mock.delivered().len()), (4, 4, 0));
    }

    #[tokio::test]
    async fn unknown_endpoints_are_not_found_and_forgotten_ones_gone() {
        let (key, mock, subscription) = started().await;
        let stranger =
            PushSubscription::parse(mock.provider.url("/push/0123456789abcdef").as_str(), &subscription.p256dh(), &subscription.auth())
                .unwrap();
        assert_eq!(post(&stranger, &valid(&key, &mock), None).await.0, 404);
        mock.forget(&subscription);
        assert_eq!(post(&subscription, &valid(&key, &mock), None).await.0, 410);
    }

    #[tokio::test]
    async fn scripted_answers_come_first_then_201() {
        let (key, mock, subscription) = started().await;
        mock.answer_next(vec![Reply::new(429).header("retry-after", "30"), Reply::new(500)]);
        let attempt = valid(&key, &mock);
        assert_eq!(post(&subscription, &attempt, None).await.0, 429);
        assert_eq!(post(&subscription, &attempt, None).await.0, 500);
        assert_eq!(post(&subscription, &attempt, None).await.0, 201);
        assert_eq!(mock.delivered().len(), 1, "scripted answers deliver nothing");
        assert_eq!(mock.requests(), 3);
    }
}
