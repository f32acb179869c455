//! What is kept of each passkey approval: what the user saw, and the
//! ceremony's signed data. Serialised once, straight to the stored JSON.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::Serialize;
use shared::ActionSummary;

use super::verify::AssertionEvidence;
use crate::sealed::SecretsKey;
use crate::token::hmac_sha256;

/// The key that binds an approval's challenge to what it approves:
/// derived from `PASSGATE_SECRETS_KEY` (the same on every instance, never
/// stored in the database), so that whoever can write the database still
/// cannot make evidence for another session or another amount. `Debug`
/// never shows it.
#[derive(Clone)]
pub struct EvidenceKey([u8; 32]);

impl std::fmt::Debug for EvidenceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvidenceKey(<redacted>)")
    }
}

/// What an approval's binding MAC covers.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'a> {
    /// The challenge the relying party issued (base64url), from the saved
    /// ceremony state.
    pub challenge: &'a str,
    pub session_id: &'a str,
    /// The request's fingerprint (hex): dynamic linking to the request.
    pub fingerprint: &'a str,
    pub partner_name: &'a str,
    /// What the page showed.
    pub summary: &'a ActionSummary,
    /// What else the user was shown: an sms-otp code's SMS text (its code
    /// redacted); empty for a passkey approval.
    pub shown: &'a str,
}

impl EvidenceKey {
    pub fn new(sealing: &SecretsKey) -> Self {
        EvidenceKey(sealing.derive("passgate evidence binding v1"))
    }

    fn mac(&self, bound: &Bound<'_>) -> Result<hmac::Hmac<sha2::Sha256>, serde_json::Error> {
        let summary = serde_json::to_string(bound.summary)?;
        let mut mac = hmac_sha256(&self.0);
        // Each field length-prefixed: no two tuples share an input.
        for field in [bound.challenge, bound.session_id, bound.fingerprint, bound.partner_name, summary.as_str(), bound.shown] {
            mac.update(&u64::try_from(field.len()).unwrap_or(u64::MAX).to_be_bytes());
            mac.update(field.as_bytes());
        }
        Ok(mac)
    }

    /// The MAC (base64url) kept with the evidence.
    pub fn bind(&self, bound: &Bound<'_>) -> Result<String, serde_json::Error> {
        Ok(URL_SAFE_NO_PAD.encode(self.mac(bound)?.finalize().into_bytes()))
    }

    /// Whether `kept` is the MAC of `bound` (compared in constant time).
    pub fn holds(&self, bound: &Bound<'_>, kept: &str) -> bool {
        match (self.mac(bound), URL_SAFE_NO_PAD.decode(kept)) {
            (Ok(mac), Ok(kept)) => mac.verify_slice(&kept).is_ok(),
            _ => false,
        }
    }
}

/// An approval's evidence row. A first passkey created from a link keeps
/// none of its own (its attestation object is in the credential
/// registry): the session is allowed by the assertion that follows it.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalEvidence<'a> {
    /// An approval with a stored passkey: the assertion, re-verifiable,
    /// and the MAC that binds its challenge to this session, request and
    /// summary (see [`EvidenceKey`]).
    Authentication {
        session_id: &'a str,
        partner_name: &'a str,
        summary: &'a ActionSummary,
        /// The request's fingerprint, hex.
        fingerprint: &'a str,
        passkey_id: &'a str,
        assertion: &'a AssertionEvidence,
        binding_mac: &'a str,
    },
    /// An sms-otp approval: the SMS the user read (amount and payee; its
    /// code redacted) and the MAC of the code it carried, bound like a
    /// passkey's challenge, so that the binding of code to payment is
    /// provable once the outbox is purged.
    SmsOtp {
        session_id: &'a str,
        partner_name: &'a str,
        summary: &'a ActionSummary,
        fingerprint: &'a str,
        sms_text: &'a str,
        /// The code's MAC (base64url), as the session kept it.
        code_mac: &'a str,
        binding_mac: &'a str,
    },
}

impl ApprovalEvidence<'_> {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
