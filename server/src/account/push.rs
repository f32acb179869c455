//! The paired phone's Web Push subscription: the phone reads the VAPID
//! public key it subscribes with, then posts the browser's
//! `PushSubscription` after pairing and whenever it changes; it is kept
//! with the pairing (`store/push_outbox.rs`) until the phone drops it, is
//! unpaired, or the push service says it is gone (the account area then
//! shows the phone's notifications off).
//!
//! The endpoint is the client's choice and Passgate POSTs to it: it must
//! parse as a subscription (https, a P-256 key, a 16-byte secret) and
//! name one of the configured push services ([`PushHosts`]).

use super::Accounts;
use crate::error::{Error, Result};
use crate::model::PairedPhone;
use crate::notify::webpush::{PushHosts, PushSubscription, SubscriptionError};
use crate::store::StoredSubscription;

/// Web Push as the account service sees it.
#[derive(Debug, Clone)]
pub struct PushService {
    /// The VAPID public key, base64url: the `applicationServerKey`.
    pub public_key: String,
    pub hosts: PushHosts,
}

impl Accounts {
    fn push_service(&self) -> Result<&PushService> {
        self.push_service.as_ref().ok_or(Error::NotFound("Notifications are not configured on this server"))
    }

    /// The key phones subscribe with.
    pub fn push_key(&self) -> Result<&str> {
        Ok(&self.push_service()?.public_key)
    }

    /// Keeps `phone`'s push subscription (the browser's `PushSubscription`
    /// fields), replacing the one it had.
    pub async fn subscribe_phone(&self, phone: &PairedPhone, endpoint: &str, p256dh: &str, auth: &str) -> Result<()> {
        let service = self.push_service()?;
        let subscription = PushSubscription::parse(endpoint, p256dh, auth).map_err(|e| {
            let field = match e {
                SubscriptionError::Endpoint(_) => "endpoint",
                SubscriptionError::P256dh(_) => "keys.p256dh",
                SubscriptionError::Auth(_) => "keys.auth",
            };
            Error::Validation { field: field.into(), message: e.to_string() }
        })?;
        if !service.hosts.allows(subscription.endpoint()) {
            return Err(Error::Validation {
                field: "endpoint".into(),
                message: "the endpoint is not one of the push services this server sends to".into(),
            });
        }
        let stored =
            StoredSubscription { endpoint: subscription.endpoint().to_string(), p256dh: subscription.p256dh(), auth: subscription.auth() };
        match self.store.set_push_subscription(&phone.id, Some(&stored), self.clock.now()).await? {
            true => Ok(()),
            false => Err(Error::PhoneNotPaired),
        }
    }

    /// Forgets `phone`'s push subscription (notifications turned off).
    pub async fn unsubscribe_phone(&self, phone: &PairedPhone) -> Result<()> {
        match self.store.set_push_subscription(&phone.id, None, self.clock.now()).await? {
            true => Ok(()),
            false => Err(Error::PhoneNotPaired),
        }
    }
}
