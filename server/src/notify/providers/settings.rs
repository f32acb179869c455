//! Which SMS provider, from the environment:
//!
//! | setting | |
//! | --- | --- |
//! | `PASSGATE_SMS_PROVIDER` | `webhook` or `twilio`; unset: no provider |
//! | `PASSGATE_SMS_WEBHOOK_URL` | webhook: where to POST (https; http to loopback only) |
//! | `PASSGATE_SMS_WEBHOOK_SECRET` | webhook: the signing secret, 32 to 64 bytes |
//! | `PASSGATE_TWILIO_BASE_URL` | twilio: defaults to `https://api.twilio.com` |
//! | `PASSGATE_TWILIO_ACCOUNT_SID` | twilio: `AC…` |
//! | `PASSGATE_TWILIO_API_KEY_SID` | twilio, optional: `SK…`, to authenticate with an API key |
//! | `PASSGATE_TWILIO_AUTH_TOKEN` | twilio: the auth token (or the API key's secret) |
//! | `PASSGATE_TWILIO_FROM` | twilio: the sending number, E.164 … |
//! | `PASSGATE_TWILIO_MESSAGING_SERVICE_SID` | … or a Messaging Service, `MG…` (exactly one of the two) |
//!
//! An empty value counts as unset. Errors name the setting; `Debug` never
//! shows a secret.

use std::sync::Arc;

use anyhow::{anyhow, bail};
use url::Url;

use super::twilio::{TwilioCredentials, TwilioProvider, TwilioSender};
use super::webhook::{WebhookProvider, SECRET_LEN};
use super::SmsProvider;
use crate::outbound::{check_url, HttpsClient};
use crate::phone::Phone;

const PROVIDER: &str = "PASSGATE_SMS_PROVIDER";
const WEBHOOK_URL: &str = "PASSGATE_SMS_WEBHOOK_URL";
const WEBHOOK_SECRET: &str = "PASSGATE_SMS_WEBHOOK_SECRET";
const TWILIO_BASE_URL: &str = "PASSGATE_TWILIO_BASE_URL";
const TWILIO_ACCOUNT_SID: &str = "PASSGATE_TWILIO_ACCOUNT_SID";
const TWILIO_API_KEY_SID: &str = "PASSGATE_TWILIO_API_KEY_SID";
const TWILIO_AUTH_TOKEN: &str = "PASSGATE_TWILIO_AUTH_TOKEN";
const TWILIO_FROM: &str = "PASSGATE_TWILIO_FROM";
const TWILIO_MESSAGING_SERVICE_SID: &str = "PASSGATE_TWILIO_MESSAGING_SERVICE_SID";
const TWILIO_DEFAULT_BASE_URL: &str = "https://api.twilio.com";

#[derive(Clone, PartialEq, Eq)]
pub enum SmsProviderSettings {
    Webhook {
        url: Url,
        secret: String,
    },
    Twilio {
        base_url: Url,
        account_sid: String,
        /// `SK…`: authenticate with this API key, `auth_token` being its secret.
        api_key_sid: Option<String>,
        auth_token: String,
        from: TwilioSender,
    },
}

const REDACTED: &str = "<redacted>";

impl std::fmt::Debug for SmsProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmsProviderSettings::Webhook { url, secret: _ } => {
                f.debug_struct("Webhook").field("url", &url.as_str()).field("secret", &REDACTED).finish()
            }
            SmsProviderSettings::Twilio { base_url, account_sid, api_key_sid, auth_token: _, from } => f
                .debug_struct("Twilio")
                .field("base_url", &base_url.as_str())
                .field("account_sid", account_sid)
                .field("api_key_sid", api_key_sid)
                .field("auth_token", &REDACTED)
                .field("from", from)
                .finish(),
        }
    }
}

impl SmsProviderSettings {
    /// Reads the settings through `get` (`std::env::var(..).ok()` in
    /// production, a map in tests). `None` when no provider is chosen.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<SmsProviderSettings>> {
        let get = |name: &str| get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        match get(PROVIDER).as_deref() {
            None => Ok(None),
            Some("webhook") => webhook(&get).map(Some),
            Some("twilio") => twilio(&get).map(Some),
            Some(other) => bail!("{PROVIDER}={other:?} is not one of webhook, twilio"),
        }
    }

    /// The provider these settings describe, sending through `client`.
    pub fn build(self, client: HttpsClient) -> anyhow::Result<Arc<dyn SmsProvider>> {
        Ok(match self {
            SmsProviderSettings::Webhook { url, secret } => Arc::new(WebhookProvider::new(client, url, &secret)?),
            SmsProviderSettings::Twilio { base_url, account_sid, api_key_sid, auth_token, from } => {
                let credentials =
                    TwilioCredentials { account_sid: &account_sid, api_key_sid: api_key_sid.as_deref(), auth_token: &auth_token };
                Arc::new(TwilioProvider::new(client, &base_url, &credentials, from)?)
            }
        })
    }
}

fn webhook(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<SmsProviderSettings> {
    let url = url_setting(WEBHOOK_URL, &required(get, WEBHOOK_URL, "webhook")?)?;
    let secret = required(get, WEBHOOK_SECRET, "webhook")?;
    if !SECRET_LEN.contains(&secret.len()) {
        bail!("{WEBHOOK_SECRET} must be 32 to 64 bytes (it is {}); e.g. `openssl rand -hex 32`", secret.len());
    }
    Ok(SmsProviderSettings::Webhook { url, secret })
}

fn twilio(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<SmsProviderSettings> {
    let base_url = url_setting(TWILIO_BASE_URL, &get(TWILIO_BASE_URL).unwrap_or_else(|| TWILIO_DEFAULT_BASE_URL.to_owned()))?;
    let account_sid = sid(TWILIO_ACCOUNT_SID, &required(get, TWILIO_ACCOUNT_SID, "twilio")?, "AC")?;
    let api_key_sid = get(TWILIO_API_KEY_SID).map(|key| sid(TWILIO_API_KEY_SID, &key, "SK")).transpose()?;
    let auth_token = required(get, TWILIO_AUTH_TOKEN, "twilio")?;
    let from = match (get(TWILIO_FROM), get(TWILIO_MESSAGING_SERVICE_SID)) {
        (Some(number), None) => TwilioSender::Number(Phone::parse(&number).map_err(|e| anyhow!("{TWILIO_FROM}: {e}"))?),
        (None, Some(service)) => TwilioSender::MessagingService(sid(TWILIO_MESSAGING_SERVICE_SID, &service, "MG")?),
        (Some(_), Some(_)) => bail!("set {TWILIO_FROM} or {TWILIO_MESSAGING_SERVICE_SID}, not both"),
        (None, None) => bail!("{PROVIDER}=twilio needs {TWILIO_FROM} (a Twilio number) or {TWILIO_MESSAGING_SERVICE_SID}"),
    };
    Ok(SmsProviderSettings::Twilio { base_url, account_sid, api_key_sid, auth_token, from })
}

fn required(get: &impl Fn(&str) -> Option<String>, name: &str, provider: &str) -> anyhow::Result<String> {
    get(name).ok_or_else(|| anyhow!("{PROVIDER}={provider} needs {name}"))
}

fn url_setting(name: &str, value: &str) -> anyhow::Result<Url> {
    let url = Url::parse(value).map_err(|e| anyhow!("{name}: not a URL ({e})"))?;
    check_url(&url).map_err(|e| anyhow!("{name}: {e}"))?;
    Ok(url)
}

/// A Twilio SID: a two-letter prefix and 32 hex digits.
fn sid(name: &str, value: &str, prefix: &str) -> anyhow::Result<String> {
    let digits = value.strip_prefix(prefix).unwrap_or("");
    if digits.len() == 32 && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(value.to_owned())
    } else {
        bail!("{name}: a Twilio SID is {prefix} and 32 hex digits")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "twilio-auth-token-value";
    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    fn read(pairs: &[(&str, &str)]) -> anyhow::Result<Option<SmsProviderSettings>> {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        SmsProviderSettings::from_env(|name| env.get(name).cloned())
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        read(pairs).unwrap_err().to_string()
    }

    fn twilio_env() -> Vec<(&'static str, &'static str)> {
        vec![(PROVIDER, "twilio"), (TWILIO_ACCOUNT_SID, ACCOUNT), (TWILIO_AUTH_TOKEN, TOKEN), (TWILIO_FROM, "+15005550006")]
    }

    #[test]
    fn no_provider_unless_one_is_chosen() {
        assert_eq!(read(&[]).unwrap(), None);
        assert_eq!(read(&[(PROVIDER, " ")]).unwrap(), None);
        assert!(error(&[(PROVIDER, "carrier-pigeon")]).contains(PROVIDER));
    }

    #[test]
    fn webhook_settings_are_read_and_checked() {
        let ok = read(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "https://sms.example.com/send"), (WEBHOOK_SECRET, SECRET)]).unwrap();
        assert_eq!(
            ok,
            Some(SmsProviderSettings::Webhook { url: Url::parse("https://sms.example.com/send").unwrap(), secret: SECRET.into() })
        );
        assert!(error(&[(PROVIDER, "webhook"), (WEBHOOK_SECRET, SECRET)]).contains(WEBHOOK_URL));
        assert!(error(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "https://sms.example.com/")]).contains(WEBHOOK_SECRET));
        let short = error(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "https://sms.example.com/"), (WEBHOOK_SECRET, "short")]);
        assert!(short.contains(WEBHOOK_SECRET) && short.contains("32 to 64") && !short.contains("short"), "{short}");
        let cleartext = error(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "http://sms.example.com/send"), (WEBHOOK_SECRET, SECRET)]);
        assert!(cleartext.contains(WEBHOOK_URL) && cleartext.contains("loopback"), "{cleartext}");
        let loopback = read(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "http://127.0.0.1:9000/send"), (WEBHOOK_SECRET, SECRET)]);
        assert!(loopback.is_ok(), "{loopback:?}");
        assert!(error(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "not a url"), (WEBHOOK_SECRET, SECRET)]).contains(WEBHOOK_URL));
    }

    #[test]
    fn twilio_settings_are_read_with_their_default_base_url() {
        let Some(SmsProviderSettings::Twilio { base_url, account_sid, api_key_sid, auth_token, from }) = read(&twilio_env()).unwrap()
        else {
            panic!("twilio settings")
        };
        assert_eq!(base_url.as_str(), "https://api.twilio.com/");
        assert_eq!((account_sid.as_str(), api_key_sid, auth_token.as_str()), (ACCOUNT, None, TOKEN));
        assert_eq!(from, TwilioSender::Number(Phone::parse("+15005550006").unwrap()));
        let mut service = twilio_env();
        service.retain(|(k, _)| *k != TWILIO_FROM);
        service.push((TWILIO_MESSAGING_SERVICE_SID, "MG0123456789abcdef0123456789abcdef"));
        let Some(SmsProviderSettings::Twilio { from, .. }) = read(&service).unwrap() else { panic!("twilio settings") };
        assert_eq!(from, TwilioSender::MessagingService("MG0123456789abcdef0123456789abcdef".into()));
    }

    #[test]
    fn twilio_errors_name_the_setting() {
        let without = |name: &str| {
            let mut env = twilio_env();
            env.retain(|(k, _)| *k != name);
            error(&env)
        };
        assert!(without(TWILIO_ACCOUNT_SID).contains(TWILIO_ACCOUNT_SID));
        assert!(without(TWILIO_AUTH_TOKEN).contains(TWILIO_AUTH_TOKEN));
        let no_sender = without(TWILIO_FROM);
        assert!(no_sender.contains(TWILIO_FROM) && no_sender.contains(TWILIO_MESSAGING_SERVICE_SID), "{no_sender}");
        let with = |pair: (&'static str, &'static str)| {
            let mut env = twilio_env();
            env.retain(|(k, _)| *k != pair.0);
            env.push(pair);
            error(&env)
        };
        assert!(with((TWILIO_ACCOUNT_SID, "ACnope")).contains(TWILIO_ACCOUNT_SID));
        assert!(with((TWILIO_FROM, "0612345678")).contains(TWILIO_FROM));
        assert!(with((TWILIO_MESSAGING_SERVICE_SID, "MG0123456789abcdef0123456789abcdef")).contains("not both"));
        assert!(with((TWILIO_BASE_URL, "http://api.twilio.com")).contains(TWILIO_BASE_URL));
        assert!(with((TWILIO_API_KEY_SID, "AKwrong")).contains(TWILIO_API_KEY_SID));
    }

    #[test]
    fn debug_hides_the_secrets() {
        let webhook = read(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "https://sms.example.com/"), (WEBHOOK_SECRET, SECRET)]).unwrap().unwrap();
        let twilio = read(&twilio_env()).unwrap().unwrap();
        for (settings, secret) in [(webhook, SECRET), (twilio, TOKEN)] {
            let shown = format!("{settings:?}");
            assert!(!shown.contains(secret) && shown.contains(REDACTED), "{shown}");
        }
    }

    #[tokio::test]
    async fn settings_build_their_provider() {
        let client = super::super::tests::client();
        let webhook = read(&[(PROVIDER, "webhook"), (WEBHOOK_URL, "https://sms.example.com/"), (WEBHOOK_SECRET, SECRET)]).unwrap().unwrap();
        assert!(webhook.build(client.clone()).is_ok());
        assert!(read(&twilio_env()).unwrap().unwrap().build(client).is_ok());
    }
}
