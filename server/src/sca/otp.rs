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

use super::guard::ProtectedRequest;
use super::{Fingerprint, Method, Sca, State};
use crate::audit::evidence::{ApprovalEvidence, Bound};
use crate::error::{Error, ReplayRefusal, Result, ScaChallenge};
use crate::ledger::{Action, Created};
use crate::model::Session;
use crate::model::{AuditEvent, Caller, ClientInfo};
use crate::notify::sms::{OutboxCopy, OutgoingSms};
use crate::notify::Notice;
use crate::one_time_code::{new_code, CodeFor, CODE_DIGITS, MAX_WRONG_CODES, OTP_LIFETIME_MS, RESEND_AFTER_MS};
use crate::store::{KeyWindow, NewOtp, NewSession, OtpSession};
use crate::token::{Secret, SecretHash};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use shared::error_code;

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
        let mac = self.otp_key.seal(CodeFor::Approval, &token.hash(), &code);
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
        self.open_and_notify(caller, new, Some(&Notice::Sms(sms)), request.client).await?;
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
        let sms_text = sms.redacted();
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
            code.len() == CODE_DIGITS && self.otp_key.matches(CodeFor::Approval, session, code, mac)
        }
    }
}
