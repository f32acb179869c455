//! Twilio's Messages API: `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`,
//! a form with `To`, `Body`, and `From` (a Twilio number) or
//! `MessagingServiceSid`; HTTP Basic auth with the account SID and its
//! auth token, or an API key SID and its secret. 201 (or 200) = queued,
//! and the JSON answer's `sid` names the message. A refusal is JSON too:
//! `{"code": 21211, "message": "…", "status": 400, …}`; its code and
//! message (never the SMS) go in the failure's reason.
//!
//! Twilio has no idempotency key for this call: a request that timed out
//! may have been sent, and the retry sends it again. The outbox retries
//! rarely (network failures, 429, 5xx), and a duplicate code is harmless.

use async_trait::async_trait;
use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use url::Url;

use super::{scrub, status_failure, transport_failure, SendFailure, Sent, SmsProvider, SmsToSend};
use crate::outbound::{check_url, HttpsClient, OutboundResponse};
use crate::phone::Phone;

const NAME: &str = "twilio";

/// Who the SMS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioSender {
    /// A Twilio number (`From`).
    Number(Phone),
    /// A Messaging Service (`MessagingServiceSid`, `MG…`), which picks the number.
    MessagingService(String),
}

pub struct TwilioProvider {
    client: HttpsClient,
    url: Url,
    authorization: HeaderValue,
    from: TwilioSender,
}

/// `Debug` shows where and from whom, never the credentials.
impl std::fmt::Debug for TwilioProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioProvider").field("url", &self.url.as_str()).field("from", &self.from).finish_non_exhaustive()
    }
}

/// The Basic auth pair: the account's own token, or an API key's.
pub struct TwilioCredentials<'a> {
    pub account_sid: &'a str,
    /// `SK…`: then `auth_token` is that key's secret.
    pub api_key_sid: Option<&'a str>,
    pub auth_token: &'a str,
}

impl TwilioProvider {
    /// `base_url` is `https://api.twilio.com` in production (a loopback
    /// mock in tests).
    pub fn new(client: HttpsClient, base_url: &Url, credentials: &TwilioCredentials<'_>, from: TwilioSender) -> anyhow::Result<Self> {
        check_url(base_url)?;
        let url = messages_url(base_url, credentials.account_sid)?;
        let user = credentials.api_key_sid.unwrap_or(credentials.account_sid);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", credentials.auth_token));
        let mut authorization = HeaderValue::from_str(&format!("Basic {basic}"))?;
        authorization.set_sensitive(true);
        Ok(TwilioProvider { client, url, authorization, from })
    }

    fn form(&self, message: &SmsToSend) -> Vec<u8> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("To", message.to.as_str());
        match &self.from {
            TwilioSender::Number(number) => form.append_pair("From", number.as_str()),
            TwilioSender::MessagingService(sid) => form.append_pair("MessagingServiceSid", sid),
        };
        form.append_pair("Body", &message.body);
        form.finish().into_bytes()
    }
}

fn messages_url(base_url: &Url, account_sid: &str) -> anyhow::Result<Url> {
    let mut url = base_url.clone();
    url.set_query(None);
    url.path_segments_mut().map_err(|()| anyhow::anyhow!("the Twilio base URL cannot have a path"))?.pop_if_empty().extend([
        "2010-04-01",
        "Accounts",
        account_sid,
        "Messages.json",
    ]);
    Ok(url)
}

#[async_trait]
impl SmsProvider for TwilioProvider {
    async fn send(&self, message: &SmsToSend) -> Result<Sent, SendFailure> {
        let headers = [
            (AUTHORIZATION, self.authorization.clone()),
            (CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded")),
            (HeaderName::from_static("accept"), HeaderValue::from_static("application/json")),
        ];
        let response = self.client.post(&self.url, &headers, self.form(message)).await.map_err(|e| transport_failure(NAME, e))?;
        if !response.status.is_success() {
            return Err(status_failure(&response, refusal(&response, &message.body)));
        }
        let provider_id = json_field(&response, "sid").and_then(|sid| sid.as_str().map(str::to_owned));
        Ok(Sent { provider_id })
    }
}

/// "twilio answered 400 Bad Request: error 21211: The 'To' number … is
/// not a valid phone number." — Twilio's code and message, cut, and
/// scrubbed of the SMS should Twilio ever quote it.
fn refusal(response: &OutboundResponse, sms_body: &str) -> String {
    let mut reason = format!("{NAME} answered {}", response.status);
    if let Some(code) = json_field(response, "code") {
        reason.push_str(&format!(": error {code}"));
    }
    if let Some(text) = json_field(response, "message").as_ref().and_then(|m| m.as_str()) {
        reason.push_str(&format!(": {}", scrub(text, sms_body, 300)));
    }
    reason
}

fn json_field(response: &OutboundResponse, name: &str) -> Option<serde_json::Value> {
    let mut answer: serde_json::Value = serde_json::from_slice(&response.body).ok()?;
    answer.get_mut(name).map(serde_json::Value::take).filter(|value| !value.is_null())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::tests::{client, closed_port, message, SECRET_BODY};
    use super::*;
    use crate::outbound::mock::{MockProvider, Reply};

    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "twilio-auth-token-0123456789abcdef";

    fn provider(base: &Url, from: TwilioSender) -> TwilioProvider {
        let credentials = TwilioCredentials { account_sid: ACCOUNT, api_key_sid: None, auth_token: TOKEN };
        TwilioProvider::new(client(), base, &credentials, from).unwrap()
    }

    fn from_number() -> TwilioSender {
        TwilioSender::Number(Phone::parse("+15005550006").unwrap())
    }

    fn queued() -> Reply {
        Reply::new(201).json(&serde_json::json!({ "sid": "SM0123456789abcdef0123456789abcdef", "status": "queued", "body": SECRET_BODY }))
    }

    fn form(body: &[u8]) -> Vec<(String, String)> {
        url::form_urlencoded::parse(body).into_owned().collect()
    }

    #[tokio::test]
    async fn posts_the_messages_form_with_basic_auth() {
        let mock = MockProvider::scripted(vec![queued()]).await;
        let sent = provider(&mock.base(), from_number()).send(&message()).await.unwrap();
        assert_eq!(sent.provider_id.as_deref(), Some("SM0123456789abcdef0123456789abcdef"));
        let request = &mock.requests()[0];
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json"));
        assert_eq!(request.header("content-type"), Some("application/x-www-form-urlencoded"));
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
        assert_eq!(request.header("authorization"), Some(format!("Basic {basic}").as_str()));
        let expected = [("To", "+33612345678"), ("From", "+15005550006"), ("Body", SECRET_BODY)];
        assert_eq!(form(&request.body), expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
    }

    #[tokio::test]
    async fn a_messaging_service_and_an_api_key_are_used_when_given() {
        let mock = MockProvider::scripted(vec![queued()]).await;
        let credentials = TwilioCredentials { account_sid: ACCOUNT, api_key_sid: Some("SKkey"), auth_token: "key-secret" };
        let service = TwilioSender::MessagingService("MG0123456789abcdef0123456789abcdef".into());
        TwilioProvider::new(client(), &mock.url("/base/"), &credentials, service).unwrap().send(&message()).await.unwrap();
        let request = &mock.requests()[0];
        assert_eq!(request.path, format!("/base/2010-04-01/Accounts/{ACCOUNT}/Messages.json"));
        let basic = base64::engine::general_purpose::STANDARD.encode("SKkey:key-secret");
        assert_eq!(request.header("authorization"), Some(format!("Basic {basic}").as_str()));
        let fields = form(&request.body);
        assert!(fields.contains(&("MessagingServiceSid".into(), "MG0123456789abcdef0123456789abcdef".into())), "{fields:?}");
        assert!(!fields.iter().any(|(k, _)| k == "From"), "{fields:?}");
    }

    #[tokio::test]
    async fn a_refusal_is_permanent_with_twilios_code_and_not_the_sms() {
        let refusal = serde_json::json!({
            "code": 21211,
            "message": format!("The 'To' number +33612345678 is not valid. Body: {SECRET_BODY}"),
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        });
        let mock = MockProvider::scripted(vec![Reply::new(400).json(&refusal)]).await;
        let failure = provider(&mock.base(), from_number()).send(&message()).await.unwrap_err();
        let SendFailure::Permanent { reason } = failure else { panic!("{failure:?}") };
        assert!(reason.contains("400") && reason.contains("error 21211") && reason.contains("is not valid"), "{reason}");
        assert!(!reason.contains("SECRETLINK"), "{reason}");
    }

    #[tokio::test]
    async fn server_errors_and_429_are_retried_after_retry_after() {
        let mock = MockProvider::scripted(vec![
            Reply::new(503).json(&serde_json::json!({ "code": 20500, "message": "Internal Server Error" })),
            Reply::new(429).header("retry-after", "12").json(&serde_json::json!({ "code": 20429, "message": "Too Many Requests" })),
            Reply::new(429).header("retry-after", "999999"),
        ])
        .await;
        let provider = provider(&mock.base(), from_number());
        let failure = provider.send(&message()).await.unwrap_err();
        assert!(matches!(&failure, SendFailure::Retry { after: None, reason } if reason.contains("20500")), "{failure:?}");
        let failure = provider.send(&message()).await.unwrap_err();
        assert!(matches!(&failure, SendFailure::Retry { after: Some(after), .. } if *after == Duration::from_secs(12)), "{failure:?}");
        let failure = provider.send(&message()).await.unwrap_err();
        assert!(matches!(failure, SendFailure::Retry { after: Some(super::super::MAX_RETRY_AFTER), .. }), "capped");
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried() {
        let base = Url::parse(&format!("http://127.0.0.1:{}", closed_port().await)).unwrap();
        let failure = provider(&base, from_number()).send(&message()).await.unwrap_err();
        assert!(matches!(failure, SendFailure::Retry { after: None, .. }), "{failure:?}");
    }

    #[test]
    fn cleartext_to_another_host_is_refused_and_debug_hides_the_token() {
        let credentials = TwilioCredentials { account_sid: ACCOUNT, api_key_sid: None, auth_token: TOKEN };
        let err = TwilioProvider::new(client(), &Url::parse("http://api.twilio.com").unwrap(), &credentials, from_number()).unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        let shown = format!("{:?}", provider(&Url::parse("https://api.twilio.com").unwrap(), from_number()));
        assert!(!shown.contains(TOKEN) && !shown.contains("Basic"), "{shown}");
    }
}
