//! Device cookies (OWASP's "Slow down online guessing attacks with device
//! cookies"): a browser that signed in to an account before gets a cookie
//! naming that account, and its sign-ins take from a budget of their own.
//! A stranger guessing the password spends the account's shared budget,
//! which slows strangers down without keeping the owner out: guessing
//! once a minute no longer locks the real user out of their own account.
//!
//! The cookie is `nonce.mac`: 256 random bits, and an HMAC (under a key
//! derived from `PASSGATE_SECRETS_KEY`) over the account's email and the
//! nonce. Nothing is stored: a cookie is valid for the email it was
//! issued for, on any instance, and is worthless for another account.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;

use crate::sealed::SecretsKey;
use crate::token::{hmac_sha256, Secret};

/// The key device cookies are signed with. `Debug` never shows it.
#[derive(Clone)]
pub struct DeviceKey([u8; 32]);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

/// A device cookie that checked out for an account: its nonce names the
/// device's own budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice(String);

impl KnownDevice {
    /// The rate key part of this device (the nonce's text, which the
    /// cookie carries anyway; never a secret of the account).
    pub fn id(&self) -> &str {
        &self.0
    }
}

impl DeviceKey {
    pub fn new(sealing: &SecretsKey) -> Self {
        DeviceKey(sealing.derive("passgate device cookie v1"))
    }

    fn mac(&self, email: &str, nonce: &str) -> hmac::Hmac<sha2::Sha256> {
        let email = email.trim().to_lowercase();
        let mut mac = hmac_sha256(&self.0);
        mac.update(&u64::try_from(email.len()).unwrap_or(u64::MAX).to_be_bytes());
        mac.update(email.as_bytes());
        mac.update(nonce.as_bytes());
        mac
    }

    /// A new cookie for the account of `email`.
    pub fn issue(&self, email: &str) -> Result<String, crate::token::RandomnessUnavailable> {
        let nonce = Secret::generate()?;
        let nonce = nonce.expose();
        let tag = URL_SAFE_NO_PAD.encode(self.mac(email, nonce).finalize().into_bytes());
        Ok(format!("{nonce}.{tag}"))
    }

    /// The device, if `cookie` was issued for `email` (in constant time).
    pub fn check(&self, email: &str, cookie: &str) -> Option<KnownDevice> {
        let (nonce, tag) = cookie.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.mac(email, nonce).verify_slice(&tag).ok()?;
        Some(KnownDevice(nonce.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_cookie_holds_for_its_account_only_and_under_its_key_only() {
        let key = DeviceKey::new(&SecretsKey::sandbox());
        let cookie = key.issue("camille@example.com").unwrap();
        let device = key.check(" Camille@Example.com", &cookie).expect("the email as typed, any case");
        assert_eq!(Some(device.id()), cookie.split('.').next());
        assert_eq!(key.check("someone@example.com", &cookie), None, "another account");
        let (nonce, _) = cookie.split_once('.').unwrap();
        assert_eq!(key.check("camille@example.com", &format!("{nonce}.AAAA")), None, "a forged tag");
        assert_eq!(key.check("camille@example.com", "no dot"), None);
        let other = DeviceKey::new(&SecretsKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
        assert_eq!(other.check("camille@example.com", &cookie), None, "another deployment");
        assert_ne!(key.issue("camille@example.com").unwrap(), cookie, "a new nonce each time");
    }
}
