//! The `sms-otp` method (Embed partners only): a 6-digit code by SMS, typed
//! by the user into the partner's form and replayed in `X-Qonto-MFA`.
//!
//! Behind it is an SCA session of its own, which the partner never sees
//! (the 428 carries no token): bound to the request's fingerprint, alive 5
//! minutes, holding the code's MAC (never the code). Repeating the request
//! without a code sends a new one and supersedes the waiting one, at most
//! once per 30 s per user and request. A replay with the code reserves an
//! attempt first (so concurrent guesses cannot pass five), compares in
//! constant time, and on the right code allows the session and consumes
//! it with the action in the replay's one transaction: two replays with
//! the right code run the action once. The fifth wrong code burns it.
//! Sandbox accepts any 6-character code, as the bank's guide says.

use hmac::Mac;
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::Sha256;

use super::guard::ProtectedRequest;
use super::{Fingerprint, Method, Sca, State};
use crate::audit::evidence::{ApprovalEvidence, Bound};
use crate::clock::Millis;
use crate::error::{Error, ReplayRefusal, Result, ScaChallenge};
use crate::ledger::{Action, Created};
use crate::model::Session;
use crate::model::{AuditEvent, Caller, ClientInfo};
use crate::sealed::SealingKey;
use crate::sms::{OutboxCopy, OutgoingSms};
use crate::store::{KeyWindow, NewOtp, NewSession, OtpSession};
use crate::token::{hmac_sha256, RandomnessUnavailable, Secret, SecretHash};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shared::error_code;

/// A code answers within this long of being sent.
pub const OTP_LIFETIME_MS: i64 = 5 * Millis::MINUTE;
/// A new code for the same request waits this long after the last one.
pub const RESEND_AFTER_MS: i64 = 30 * Millis::SECOND;
/// Wrong codes a session takes before it is burnt (PSD2 RTS art. 4).
pub const MAX_WRONG_CODES: u32 = 5;
const CODE_DIGITS: usize = 6;

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

impl OtpKey {
    pub fn new(sealing: &SealingKey) -> Self {
        OtpKey(sealing.derive("passgate sms-otp mac v1"))
    }

    fn mac(&self, session: &SecretHash, code: &str) -> hmac::Hmac<Sha256> {
        let mut mac = hmac_sha256(&self.0);
        mac.update(&session.0);
        mac.update(code.as_bytes());
        mac
    }

    /// What the session stores of its code.
    pub fn seal(&self, session: &SecretHash, code: &str) -> SecretHash {
        SecretHash(self.mac(session, code).finalize().into_bytes().into())
    }

    /// Whether `code` is the session's (compared in constant time).
    pub fn matches(&self, session: &SecretHash, code: &str, stored: &SecretHash) -> bool {
        self.mac(session, code).verify_slice(&stored.0).is_ok()
    }
}

/// What a code approves, for its SMS: the amount and the payee (PSD2 RTS
/// art. 5: the payer is made aware of both), the IBAN by its last four.
fn described(action: &Action) -> String {
    let summary = action.summary();
    let iban: Vec<char> = summary.iban.chars().filter(|c| !c.is_whitespace()).collect();
    let iban_end: String = iban[iban.len().saturating_sub(4)..].iter().collect();
    match (summary.amount, summary.currency) {
        (Some(amount), Some(currency)) => format!("pay {amount} {currency} to {} (IBAN …{iban_end})", summary.payee_name),
        _ => format!("add {} (IBAN …{iban_end}) as a beneficiary", summary.payee_name),
    }
}

/// A fresh code of six digits, uniform over the million (rejection
/// sampling of the operating system's randomness: no modulo bias).
pub fn new_code() -> std::result::Result<String, RandomnessUnavailable> {
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

impl Sca {
    /// `sms-otp`: without a code, send one (428); with one, check it and
    /// run the action once.
    pub(super) async fn sms_otp(
        &self,
        caller: &Caller,
        request: &ProtectedRequest<'_>,
        action: &Action,
        fingerprint: Fingerprint,
        key: Option<KeyWindow<'_>>,
    ) -> Result<Created> {
        match request.mfa {
            None => Err(self.send_code(caller, action, fingerprint, request).await?),
            Some(code) => self.check_code(caller, code, &fingerprint, action, key, request).await,
        }
    }

    async fn send_code(&self, caller: &Caller, action: &Action, fingerprint: Fingerprint, request: &ProtectedRequest<'_>) -> Result<Error> {
        let now = self.clock.now();
        let token = Secret::generate()?;
        let code = new_code()?;
        let mac = self.otp_key.seal(&token.hash(), &code);
        let what = described(action);
        let sms = OutgoingSms::one_time_code(
            caller.phone.clone(),
            &caller.partner_name,
            &what,
            &code,
            &self.origin_host,
            now,
            self.outbox_copy(),
        );
        let new = NewSession {
            token_hash: token.hash(),
            link_hash: None,
            owner: &caller.owner,
            method: Method::SmsOtp,
            action,
            fingerprint,
            created_at: now,
            expires_at: now.plus_millis(OTP_LIFETIME_MS),
            otp: Some(NewOtp { mac, resend_after_ms: RESEND_AFTER_MS }),
        };
        self.open_and_notify(caller, new, Some(&sms), request.client).await?;
        Ok(Error::ScaRequired(ScaChallenge {
            code: error_code::THIRDPARTY_SMS_OTP_REQUIRED,
            message: "Thirdparty SMS OTP required",
            token: None,
            action_type: None,
        }))
    }

    async fn check_code(
        &self,
        caller: &Caller,
        code: &str,
        fingerprint: &Fingerprint,
        action: &Action,
        key: Option<KeyWindow<'_>>,
        request: &ProtectedRequest<'_>,
    ) -> Result<Created> {
        let now = self.clock.now();
        let client = request.client;
        let Some(otp) = self.store.otp_session(&caller.owner, fingerprint).await? else {
            // No code waits for this user (never sent, superseded, used).
            return Err(self.refuse(caller, ReplayRefusal::OtpInvalid, None, client).await?);
        };
        let session = &otp.session;
        let refusal = if session.fingerprint != *fingerprint {
            Some(ReplayRefusal::RequestMismatch)
        } else if session.is_expired(now) {
            Some(ReplayRefusal::Expired)
        } else {
            self.check_attempt(caller, code, &otp, client).await?
        };
        if let Some(refusal) = refusal {
            return Err(self.refuse(caller, refusal, Some(&session.id), client).await?);
        }
        // The right code: allowed, then consumed with the action in the
        // replay's transaction (a concurrent replay with the same code
        // finds it consumed).
        let event = AuditEvent::session_decided(session, "allow", serde_json::json!({"method": "sms-otp"}), client, now);
        let evidence = self.otp_evidence(caller, session, code, &otp.mac, action)?;
        if self.store.decide_session(&session.id, State::Allow, now, &event, Some(&evidence)).await? {
            super::guard::decided(Method::SmsOtp, State::Allow);
        }
        self.replay_hash(caller, &otp.token_hash, fingerprint, action, key, client).await
    }

    /// One attempt at the code, counted against the user (across all
    /// their codes and links) and against the code (five wrong burn it):
    /// `None` if it is right.
    async fn check_attempt(&self, caller: &Caller, code: &str, otp: &OtpSession, client: &ClientInfo) -> Result<Option<ReplayRefusal>> {
        let session_id = &otp.session.id;
        let attempt = match self.failures.reserve(&caller.owner.user_id).await? {
            Ok(attempt) => attempt,
            Err(_blocked) => return Ok(Some(ReplayRefusal::UserBlocked)),
        };
        if !self.store.reserve_attempt(session_id, MAX_WRONG_CODES).await? {
            return Ok(Some(ReplayRefusal::OtpLocked));
        }
        if self.is_right(code, &otp.token_hash, &otp.mac) {
            self.failures.succeeded(attempt).await?;
            return Ok(None);
        }
        if self.failures.failed(attempt, &caller.phone, client).await?.is_some() {
            return Ok(Some(ReplayRefusal::UserBlocked));
        }
        let left = self.store.attempts_left(session_id, MAX_WRONG_CODES).await?;
        Ok(Some(if left == 0 { ReplayRefusal::OtpLocked } else { ReplayRefusal::OtpInvalid }))
    }

    /// The evidence of an sms-otp approval: the SMS's text as the user
    /// read it (regenerated from the request: its code redacted) and the
    /// code's MAC, bound to the session, request and summary.
    fn otp_evidence(&self, caller: &Caller, session: &Session, code: &str, mac: &SecretHash, action: &Action) -> Result<String> {
        let sms = OutgoingSms::one_time_code(
            caller.phone.clone(),
            &caller.partner_name,
            &described(action),
            code,
            &self.origin_host,
            self.clock.now(),
            OutboxCopy::Redacted,
        );
        let sms_text = sms.stored().body.into_owned();
        let code_mac = URL_SAFE_NO_PAD.encode(mac.0);
        let fingerprint = session.fingerprint.hex();
        let bound = Bound {
            challenge: &code_mac,
            session_id: &session.id,
            fingerprint: &fingerprint,
            partner_name: &caller.partner_name,
            summary: &session.summary,
            shown: &sms_text,
        };
        let binding_mac = self.evidence_key.bind(&bound)?;
        Ok(ApprovalEvidence::SmsOtp {
            session_id: &session.id,
            partner_name: &caller.partner_name,
            summary: &session.summary,
            fingerprint: &fingerprint,
            sms_text: &sms_text,
            code_mac: &code_mac,
            binding_mac: &binding_mac,
        }
        .to_json()?)
    }

    /// Production: only the code sent. Sandbox: any 6 characters.
    fn is_right(&self, code: &str, session: &SecretHash, mac: &SecretHash) -> bool {
        if self.sandbox {
            code.chars().count() == CODE_DIGITS
        } else {
            code.len() == CODE_DIGITS && self.otp_key.matches(session, code, mac)
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
        let key = OtpKey::new(&SealingKey::sandbox());
        let (one, two) = (SecretHash([1; 32]), SecretHash([2; 32]));
        let stored = key.seal(&one, "123456");
        assert!(key.matches(&one, "123456", &stored));
        assert!(!key.matches(&one, "123457", &stored));
        assert!(!key.matches(&two, "123456", &stored), "bound to its session");
        let other = OtpKey::new(&SealingKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
        assert!(!other.matches(&one, "123456", &stored), "bound to the configured key");
        assert_ne!(stored, SecretHash(<Sha256 as sha2::Digest>::digest("123456").into()), "not a plain hash of the code");
    }
}
