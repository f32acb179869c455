//! One-time codes sent by SMS: six digits drawn without bias, kept as a
//! MAC (never the code) under a key derived from `PASSGATE_SECRETS_KEY`,
//! bound to what they were sent for. The `sms-otp` method (`sca::otp`),
//! the account area's step-up and the pairing of a phone each send them;
//! the rules they share (five wrong codes burn one, a new one at most
//! every 30 s) are the constants here.

use hmac::Mac;
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::Sha256;

use crate::sealed::SecretsKey;
use crate::token::{hmac_sha256, RandomnessUnavailable, SecretHash};

/// A code answers within this long of being sent.
pub const OTP_LIFETIME_MS: i64 = 5 * crate::clock::Millis::MINUTE;
/// A code that pairs a phone answers within this long (it is typed on
/// the phone being paired, perhaps after installing the page).
pub const PAIRING_CODE_LIFETIME_MS: i64 = 10 * crate::clock::Millis::MINUTE;
/// A new code for the same purpose waits this long after the last one.
pub const RESEND_AFTER_MS: i64 = 30 * crate::clock::Millis::SECOND;
/// Wrong codes a code takes before it is burnt (PSD2 RTS art. 4).
pub const MAX_WRONG_CODES: u32 = 5;
/// The digits of a code.
pub const CODE_DIGITS: usize = 6;

/// The key codes are MACed under: derived from `PASSGATE_SECRETS_KEY`, so
/// the same on every instance, and a stolen database alone cannot test
/// the million codes against a MAC. `Debug` never shows it.
#[derive(Clone)]
pub struct OtpKey([u8; 32]);

impl std::fmt::Debug for OtpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OtpKey(<redacted>)")
    }
}

/// What a code was sent for, beyond the secret it is bound to: a code
/// sent for one purpose never matches for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFor {
    /// An `sms-otp` approval, or a step-up before binding a factor (the
    /// secret they are bound to tells them apart).
    Approval,
    /// Pairing a phone.
    Pairing,
}

impl CodeFor {
    /// Appended to the bound secret in the MAC; empty for the codes that
    /// predate purposes, so that a code sent before an upgrade still
    /// matches after it.
    fn domain(self) -> &'static [u8] {
        match self {
            CodeFor::Approval => b"",
            CodeFor::Pairing => b"pair a phone\0",
        }
    }
}

impl OtpKey {
    pub fn new(sealing: &SecretsKey) -> Self {
        OtpKey(sealing.derive("passgate sms-otp mac v1"))
    }

    fn mac(&self, purpose: CodeFor, bound_to: &SecretHash, code: &str) -> hmac::Hmac<Sha256> {
        let mut mac = hmac_sha256(&self.0);
        mac.update(&bound_to.0);
        mac.update(purpose.domain());
        mac.update(code.as_bytes());
        mac
    }

    /// What is stored of a code sent for `purpose`, bound to `bound_to`
    /// (the hash of a session's secret).
    pub fn seal(&self, purpose: CodeFor, bound_to: &SecretHash, code: &str) -> SecretHash {
        SecretHash(self.mac(purpose, bound_to, code).finalize().into_bytes().into())
    }

    /// Whether `code` is the one stored (compared in constant time).
    pub fn matches(&self, purpose: CodeFor, bound_to: &SecretHash, code: &str, stored: &SecretHash) -> bool {
        self.mac(purpose, bound_to, code).verify_slice(&stored.0).is_ok()
    }
}

/// A fresh code of six digits, uniform over the million (rejection
/// sampling of the operating system's randomness: no modulo bias).
pub fn new_code() -> Result<String, RandomnessUnavailable> {
    // The largest multiple of 10^6 that fits in a u32.
    const ZONE: u32 = 4_294_000_000;
    loop {
        let mut bytes = [0u8; 4];
        OsRng.try_fill_bytes(&mut bytes).map_err(|e| RandomnessUnavailable::new(e.to_string()))?;
        let n = u32::from_be_bytes(bytes);
        if n < ZONE {
            return Ok(format!("{:0width$}", n % 1_000_000, width = CODE_DIGITS));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_six_digits_and_codes_differ() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| new_code().unwrap()).collect();
        assert!(codes.iter().all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())), "{codes:?}");
        assert!(codes.len() > 45, "fifty draws of a million give (almost) fifty codes");
    }

    #[test]
    fn a_code_matches_its_own_session_only_under_its_own_key() {
        let key = OtpKey::new(&SecretsKey::sandbox());
        let (one, two) = (SecretHash([1; 32]), SecretHash([2; 32]));
        let stored = key.seal(CodeFor::Approval, &one, "123456");
        assert!(key.matches(CodeFor::Approval, &one, "123456", &stored));
        assert!(!key.matches(CodeFor::Approval, &one, "123457", &stored));
        assert!(!key.matches(CodeFor::Approval, &two, "123456", &stored), "bound to its session");
        let other = OtpKey::new(&SecretsKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
        assert!(!other.matches(CodeFor::Approval, &one, "123456", &stored), "bound to the configured key");
        assert_ne!(stored, SecretHash(<Sha256 as sha2::Digest>::digest("123456").into()), "not a plain hash of the code");
    }

    #[test]
    fn a_code_sent_for_one_purpose_never_matches_for_another() {
        let key = OtpKey::new(&SecretsKey::sandbox());
        let session = SecretHash([3; 32]);
        let pairing = key.seal(CodeFor::Pairing, &session, "123456");
        assert!(key.matches(CodeFor::Pairing, &session, "123456", &pairing));
        assert!(!key.matches(CodeFor::Approval, &session, "123456", &pairing));
        let approval = key.seal(CodeFor::Approval, &session, "123456");
        assert!(!key.matches(CodeFor::Pairing, &session, "123456", &approval));
    }
}
