//! SMS providers: the boundary between Passgate's outbox and whoever
//! carries the SMS to the phone. A provider gets one message and says
//! whether it was taken ([`Sent`]), should be tried again later
//! ([`SendFailure::Retry`]) or will never go through
//! ([`SendFailure::Permanent`]); the outbox's sender decides what to do
//! with that (when to retry: [`retry_delay`]).
//!
//! Two providers: [`WebhookProvider`] (a signed JSON POST to a gateway of
//! the operator's own) and [`TwilioProvider`] (Twilio's Messages API).
//! [`SmsProviderSettings`] reads which one from the environment.
//!
//! A message's body carries a secret (an approval link, a code): it goes
//! to the provider and nowhere else. Neither `Debug` nor any failure
//! reason shows it.

use std::time::Duration;

use async_trait::async_trait;

use crate::outbound::{OutboundError, OutboundResponse};
use crate::phone::Phone;

mod settings;
mod twilio;
mod webhook;

pub use settings::SmsProviderSettings;
pub use twilio::{TwilioCredentials, TwilioProvider, TwilioSender};
pub use webhook::{sign, verify_signature, WebhookProvider};

/// The longest wait a provider's `Retry-After` may impose.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);
/// The first retry's delay, doubled on each attempt.
const BASE_DELAY: Duration = Duration::from_secs(1);
/// The longest backoff, before `Retry-After`.
const MAX_DELAY: Duration = Duration::from_secs(5 * 60);

/// One SMS on its way to the provider.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsToSend {
    /// The outbox row's id: the same on every attempt, so a provider (or
    /// a webhook receiver) can drop a resend of what it already took.
    pub id: String,
    pub to: Phone,
    /// Carries a link or a code: never logged.
    pub body: String,
}

/// `Debug` shows the id and the masked recipient, never the body.
impl std::fmt::Debug for SmsToSend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsToSend").field("id", &self.id).field("to", &self.to).finish_non_exhaustive()
    }
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The provider's own id for it (Twilio's `sid`), for support cases.
    pub provider_id: Option<String>,
}

/// The provider did not take the message. Reasons never hold the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendFailure {
    /// Try again later (network, timeout, 429, 5xx): no sooner than
    /// `after` if the provider said so (already capped at [`MAX_RETRY_AFTER`]).
    #[error("will retry: {reason}")]
    Retry { after: Option<Duration>, reason: String },
    /// Trying again would fail the same way (a refused number, bad
    /// credentials, a refused URL).
    #[error("failed for good: {reason}")]
    Permanent { reason: String },
}

#[async_trait]
pub trait SmsProvider: Send + Sync {
    async fn send(&self, message: &SmsToSend) -> Result<Sent, SendFailure>;
}

/// How long to wait before attempt `attempt + 1` (`attempt` 0 is the
/// first retry): about 1 s doubling to 5 min, with half of it random
/// (spreads a burst of retries after an outage), and no sooner than the
/// provider's `Retry-After` (capped at [`MAX_RETRY_AFTER`]).
pub fn retry_delay(attempt: u32, after: Option<Duration>) -> Duration {
    let backoff = BASE_DELAY.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(MAX_DELAY);
    let half = backoff / 2;
    // ThreadRng: ChaCha seeded from the OS, a CSPRNG.
    let jitter = Duration::from_millis(rand::random_range(0..=millis(half)));
    let delay = half + jitter;
    match after {
        Some(after) => delay.max(after.min(MAX_RETRY_AFTER)),
        None => delay,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A request that got no answer: the message may have gone, or not; a
/// resend is safe (the id is the idempotency key). A refused URL is a
/// setting to fix, not a moment to wait.
pub(crate) fn transport_failure(provider: &str, error: OutboundError) -> SendFailure {
    match error {
        OutboundError::RefusedUrl(_) => SendFailure::Permanent { reason: format!("{provider}: {error}") },
        OutboundError::Timeout(_) | OutboundError::Transport(_) | OutboundError::BodyTooLarge(_) => {
            SendFailure::Retry { after: None, reason: format!("{provider}: {error}") }
        }
    }
}

/// A non-2xx answer: 408, 429 and 5xx are worth retrying (after the
/// provider's `Retry-After`, capped); any other status is final.
pub(crate) fn status_failure(response: &OutboundResponse, reason: String) -> SendFailure {
    let status = response.status;
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        let after = response.retry_after(std::time::SystemTime::now()).map(|after| after.min(MAX_RETRY_AFTER));
        SendFailure::Retry { after, reason }
    } else {
        SendFailure::Permanent { reason }
    }
}

/// `text`, cut to `max` characters, with `secret` taken out: for reasons
/// quoting a provider's answer, which might echo the message.
pub(crate) fn scrub(text: &str, secret: &str, max: usize) -> String {
    let cleaned = if secret.is_empty() { text.to_owned() } else { text.replace(secret, "[body]") };
    let mut cut: String = cleaned.chars().take(max).collect();
    if cut.len() < cleaned.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outbound::{ClientOptions, HttpsClient};

    pub(crate) const SECRET_BODY: &str = "Acme asks you to approve. Review it here: https://sca.example/sca/SECRETLINK";

    pub(crate) fn message() -> SmsToSend {
        SmsToSend { id: "01JSMS000000000000000000001".into(), to: Phone::parse("+33612345678").unwrap(), body: SECRET_BODY.into() }
    }

    pub(crate) fn client() -> HttpsClient {
        HttpsClient::new(&ClientOptions { timeout: Duration::from_secs(2), ..ClientOptions::default() }).unwrap()
    }

    /// A loopback port nothing listens on.
    pub(crate) async fn closed_port() -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    }

    #[test]
    fn debug_hides_the_body() {
        let shown = format!("{:?}", message());
        assert!(!shown.contains("SECRETLINK") && !shown.contains("+33612345678"), "{shown}");
        assert!(shown.contains("01JSMS000000000000000000001"), "{shown}");
    }

    #[test]
    fn backoff_doubles_from_a_second_to_five_minutes_with_jitter() {
        for _ in 0..50 {
            let first = retry_delay(0, None);
            assert!((Duration::from_millis(500)..=Duration::from_secs(1)).contains(&first), "{first:?}");
            let fourth = retry_delay(3, None);
            assert!((Duration::from_secs(4)..=Duration::from_secs(8)).contains(&fourth), "{fourth:?}");
            let late = retry_delay(40, None);
            assert!((Duration::from_secs(150)..=Duration::from_secs(300)).contains(&late), "{late:?}");
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| retry_delay(10, None)).collect();
        assert!(spread.len() > 1, "jittered");
    }

    #[test]
    fn retry_after_wins_when_longer_and_is_capped() {
        assert_eq!(retry_delay(0, Some(Duration::from_secs(90))), Duration::from_secs(90));
        assert!(retry_delay(8, Some(Duration::from_secs(1))) >= Duration::from_secs(128));
        assert_eq!(retry_delay(0, Some(Duration::from_secs(86_400))), MAX_RETRY_AFTER);
    }

    #[test]
    fn scrub_takes_the_body_out_and_cuts() {
        assert_eq!(scrub(&format!("bad: {SECRET_BODY}"), SECRET_BODY, 200), "bad: [body]");
        assert_eq!(scrub("abcdef", "zz", 3), "abc…");
    }
}
