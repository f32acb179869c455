//! The SCA domain, free of HTTP: the guard that every sensitive action goes
//! through, the partner's view of sessions, and the approval page's
//! operations. The records and the state machine live in [`crate::model`];
//! this layer orchestrates them with storage, the relying party and SMS.

mod approval;
pub mod failures;
pub mod feed;
mod guard;
mod operations;
mod otp;
mod phone;
mod retention;

use std::sync::Arc;

use url::Url;

pub use guard::{ProtectedRequest, IDEMPOTENCY_WINDOW_MS};
pub use retention::Retention;

pub use crate::model::{Decision, Fingerprint, Method, Owner, RequestParts, Session, State};

use crate::audit::evidence::EvidenceKey;
use crate::clock::Clock;
use crate::notify::sms::{OutboxCopy, SmsSender};
use crate::notify::PushSender;
use crate::one_time_code::OtpKey;
use crate::relying_party::RelyingParty;
use crate::sealed::SecretsKey;
use crate::store::{Limits, Store};
use failures::UserFailures;

/// The SCA service: everything a handler asks of the domain.
#[derive(Clone)]
pub struct Sca {
    store: Store,
    clock: Arc<dyn Clock>,
    sms: Arc<dyn SmsSender>,
    push: Arc<dyn PushSender>,
    relying_party: RelyingParty,
    /// Where approval links point: `{link_base}{link}`, i.e.
    /// `{origin}/sca/{link}`.
    link_base: Arc<str>,
    /// Where a user reviews and removes their passkeys.
    security_page: Arc<str>,
    /// The origin's host, for the `@host #code` line of a code's SMS.
    origin_host: Arc<str>,
    otp_key: OtpKey,
    /// Binds each passkey approval's challenge to what it approves.
    evidence_key: EvidenceKey,
    /// Wrong codes and link passwords, counted per user.
    failures: UserFailures,
    sandbox: bool,
    outbox_copy: OutboxCopy,
    limits: Limits,
    /// The phones' live lists on this instance.
    feed: feed::PhoneFeed,
}

/// What the SCA service is built from.
pub struct ScaParts {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushSender>,
    pub relying_party: RelyingParty,
    pub origin: Url,
    /// MACs the `sms-otp` codes (a key derived from it).
    pub secrets_key: SecretsKey,
    pub sandbox: bool,
    /// What the SMS outbox keeps (and seals for a provider).
    pub outbox_copy: OutboxCopy,
    pub limits: Limits,
}

impl Sca {
    pub fn new(parts: ScaParts) -> Self {
        let origin = parts.origin.as_str().trim_end_matches('/');
        let link_base = format!("{origin}/sca/").into();
        let security_page: Arc<str> = format!("{origin}/account/security").into();
        let origin_host = parts.origin.host_str().unwrap_or("localhost").into();
        let failures = UserFailures::new(
            parts.store.clone(),
            parts.clock.clone(),
            parts.sms.clone(),
            Arc::clone(&security_page),
            parts.outbox_copy.clone(),
        );
        Sca {
            store: parts.store,
            clock: parts.clock,
            sms: parts.sms,
            push: parts.push,
            relying_party: parts.relying_party,
            link_base,
            security_page,
            origin_host,
            otp_key: OtpKey::new(&parts.secrets_key),
            evidence_key: EvidenceKey::new(&parts.secrets_key),
            failures,
            sandbox: parts.sandbox,
            outbox_copy: parts.outbox_copy,
            limits: parts.limits,
            feed: feed::PhoneFeed::default(),
        }
    }

    fn outbox_copy(&self) -> OutboxCopy {
        self.outbox_copy.clone()
    }
}
