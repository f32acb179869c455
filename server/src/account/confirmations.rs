//! What the paired phone confirms for the account area (seed 000: "signing
//! in elsewhere can be confirmed on the paired phone"; one phone per
//! profile, replaced through the old one). A browser session asks; the
//! phone is pushed the request, shows where it comes from, and allows it
//! with an assertion of its own passkey (user verification required, its
//! counter moved forward while it is paired) or refuses it, which tells
//! the user by SMS: someone has their password. The asking session uses
//! an allowed confirmation once, within its two minutes:
//!
//! - a sign-in's second step (possession of the phone and its passkey's
//!   user verification: both factors, as a passkey's second step);
//! - pairing a new phone in place of the one that allowed it (checked
//!   again when the new one is paired, in the same transaction).
//!
//! One waiting confirmation per user (a new request cancels the waiting
//! one), at most one new request every 30 s: no push fatigue.

use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::trusted::{browser_name, SecondStep};
use super::{Accounts, Current};
use crate::binding::Purpose;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, ClientInfo, ConfirmationPurpose, ConfirmationState, PairedPhone, PhoneConfirmation};
use crate::notify::push::{Announced, StoredPush};
use crate::notify::{OutgoingPush, OutgoingSms};
use crate::one_time_code::RESEND_AFTER_MS;
use crate::store::{Asking, Confirmed, NewConfirmation, PasskeyUse};
use shared::error_code as code;
use shared::PhoneConfirmationInfo;

/// How long the phone has to answer, and the browser to use the answer.
pub const CONFIRMATION_MS: i64 = 2 * Millis::MINUTE;

const NOT_WAITING: Error = Error::NotFound("No such confirmation waiting for this phone");

impl Accounts {
    /// Asks the paired phone to confirm this sign-in (the second step).
    pub async fn ask_sign_in_on_phone(&self, current: &Current, client: &ClientInfo) -> Result<u64> {
        self.second_step_due(current)?;
        self.ask_phone(current, ConfirmationPurpose::SignIn, client).await
    }

    /// Finishes the sign-in the phone confirmed; `trust`: remember this
    /// browser (the 90-day offer).
    pub async fn finish_sign_in_on_phone(&self, current: &Current, trust: bool, client: &ClientInfo) -> Result<SecondStep> {
        self.second_step_due(current)?;
        self.use_confirmation(current, ConfirmationPurpose::SignIn).await?;
        self.second_step_done(current, "paired_phone", trust, client).await
    }

    /// Asks the paired phone to let a new phone (this browser's) take its
    /// place; binding a factor, so after the step-up for a pairing.
    pub async fn ask_phone_replacement(&self, current: &Current, client: &ClientInfo) -> Result<u64> {
        self.require_binding(current, Purpose::PairPhone).await?;
        self.ask_phone(current, ConfirmationPurpose::ReplacePhone, client).await
    }

    /// Where the session's latest confirmation of `purpose` stands.
    pub async fn confirmation_state(&self, current: &Current, purpose: ConfirmationPurpose) -> Result<ConfirmationState> {
        let asked = self.store.confirmation_of_session(&current.token.hash(), purpose).await?;
        Ok(asked.map_or(ConfirmationState::Canceled, |c| c.state_at(self.clock.now())))
    }

    /// Whether the old phone allowed this session to pair a new one in
    /// its place (used when the new one is paired).
    pub(super) async fn replacement_allowed(&self, current: &Current, old: &PairedPhone) -> Result<bool> {
        let asked = self.store.confirmation_of_session(&current.token.hash(), ConfirmationPurpose::ReplacePhone).await?;
        Ok(asked.is_some_and(|c| c.phone_id == old.id && c.state_at(self.clock.now()) == ConfirmationState::Allowed))
    }

    /// The phone's confirmations still waiting, newest first.
    pub async fn phone_confirmations(&self, phone: &PairedPhone) -> Result<Vec<PhoneConfirmationInfo>> {
        let now = self.clock.now();
        let waiting = self.store.phone_confirmations(&phone.id, now).await?;
        Ok(waiting.into_iter().map(|c| info(c, now)).collect())
    }

    /// The challenge the phone's passkey signs to allow `id`.
    pub async fn start_phone_confirmation(&self, phone: &PairedPhone, id: &str) -> Result<RequestChallengeResponse> {
        let (challenge, state) = self.relying_party.start_authentication(std::slice::from_ref(&phone.passkey))?;
        if !self.store.save_confirmation_ceremony(id, &phone.id, &state, self.clock.now()).await? {
            return Err(NOT_WAITING);
        }
        Ok(challenge)
    }

    /// Allows `id` with the phone's passkey: once, while it waits.
    pub async fn finish_phone_confirmation(
        &self,
        phone: &PairedPhone,
        id: &str,
        answer: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<()> {
        let now = self.clock.now();
        let asked = self.store.phone_confirmation(id, &phone.id).await?.ok_or(NOT_WAITING)?;
        let state = self.store.take_confirmation_ceremony(id, &phone.id, now).await?.ok_or_else(Error::ceremony_not_started)?;
        let detail = json!({"factor": "paired_phone", "phone_id": phone.id, "purpose": asked.purpose.as_str()});
        let verified = match self.relying_party.finish_authentication(&state, vec![phone.passkey.clone()], answer) {
            Ok(verified) => verified,
            Err(e) => {
                let refused = AuditEvent::account(AuditKind::FactorRefused, Some(&phone.user_id), detail, client, now);
                self.store.append_audit(&refused).await?;
                return Err(e);
            }
        };
        let event = AuditEvent::account(AuditKind::FactorUsed, Some(&phone.user_id), detail, client, now);
        let used = PasskeyUse { passkey: &verified.passkey, new_sign_count: verified.new_sign_count, evidence: None, now };
        match self.store.allow_on_phone(id, used, &event).await? {
            Confirmed::Yes => Ok(()),
            Confirmed::Closed => Err(NOT_WAITING),
            Confirmed::CounterNotAdvanced => {
                Err(Error::PasskeyRejected("The phone's passkey counter did not move forward, or the phone was unpaired meanwhile".into()))
            }
        }
    }

    /// Refuses `id` on the phone: final, and the user is told by SMS.
    pub async fn deny_phone_confirmation(&self, phone: &PairedPhone, id: &str, client: &ClientInfo) -> Result<()> {
        let now = self.clock.now();
        let asked = self.store.phone_confirmation(id, &phone.id).await?.ok_or(NOT_WAITING)?;
        let user = self.store.user(&phone.user_id).await?.ok_or(Error::PhoneNotPaired)?;
        let what = match asked.purpose {
            ConfirmationPurpose::SignIn => "a sign-in to your account",
            ConfirmationPurpose::ReplacePhone => "pairing a new phone in place of yours",
        };
        let sms = OutgoingSms::refused_on_phone(user.phone, what, &asked.from_browser, &self.security_page, now, self.outbox_copy.clone());
        let detail = json!({"factor": "paired_phone", "phone_id": phone.id, "purpose": asked.purpose.as_str(), "denied": true});
        let event = AuditEvent::account(AuditKind::FactorRefused, Some(&phone.user_id), detail, client, now);
        if !self.store.deny_on_phone(id, &phone.id, now, &event, &sms).await? {
            return Err(NOT_WAITING);
        }
        self.deliver(&sms).await;
        Ok(())
    }

    /// Asks the user's paired phone; the seconds it has to answer.
    async fn ask_phone(&self, current: &Current, purpose: ConfirmationPurpose, client: &ClientInfo) -> Result<u64> {
        let phone = self
            .store
            .paired_phone_of_user(&current.user.id)
            .await?
            .ok_or(Error::Conflict { code: code::NO_PAIRED_PHONE, message: "No phone is paired with your account" })?;
        let now = self.clock.now();
        let ip = client.ip.map(|ip| ip.to_string());
        let new = NewConfirmation {
            user_id: &current.user.id,
            phone_id: &phone.id,
            purpose,
            session: &current.token.hash(),
            from_ip: ip.as_deref(),
            from_browser: &browser_name(client.user_agent.as_deref()),
            now,
            expires_at: now.plus_millis(CONFIRMATION_MS),
            resend_after_ms: RESEND_AFTER_MS,
        };
        let push = OutgoingPush { phone_id: phone.id.clone(), sent_at: now };
        let id = match self.store.ask_phone_confirmation(new, &push).await? {
            Asking::Asked(id) => id,
            Asking::TooSoon(wait_ms) => {
                return Err(Error::TooManyRequests {
                    code: code::PHONE_CONFIRMATION_TOO_SOON,
                    message: "Your phone was asked less than 30 seconds ago: answer it, or wait before asking again",
                    retry_after_secs: u64::try_from(wait_ms).map_or(1, |ms| ms.div_ceil(1_000).max(1)),
                })
            }
            Asking::SessionGone => return Err(Error::SessionEnded),
        };
        let stored = StoredPush { phone_id: phone.id, announced: Announced::Confirmation(id), sent_at: now };
        if let Err(e) = self.push.deliver(&stored).await {
            tracing::warn!(error = %e, "push delivery failed");
        }
        Ok(u64::try_from(CONFIRMATION_MS / 1_000).unwrap_or(0))
    }

    /// Uses the session's allowed confirmation of `purpose`, once; else
    /// says why not.
    async fn use_confirmation(&self, current: &Current, purpose: ConfirmationPurpose) -> Result<()> {
        if self.store.use_confirmation(&current.token.hash(), purpose, self.clock.now()).await? {
            return Ok(());
        }
        Err(match self.confirmation_state(current, purpose).await? {
            ConfirmationState::Waiting => Error::Conflict {
                code: code::PHONE_CONFIRMATION_PENDING,
                message: "Your phone has not confirmed yet: answer the request on it",
            },
            ConfirmationState::Denied => Error::NotAllowed { code: code::PHONE_CONFIRMATION_DENIED, message: "Your phone refused this" },
            ConfirmationState::Allowed | ConfirmationState::Canceled | ConfirmationState::Used => {
                Error::Conflict { code: code::PHONE_CONFIRMATION_MISSING, message: "Nothing waits for your phone's answer: ask it again" }
            }
        })
    }
}

fn info(c: PhoneConfirmation, now: Millis) -> PhoneConfirmationInfo {
    PhoneConfirmationInfo {
        seconds_left: u64::try_from((c.expires_at.0 - now.0).max(0) / 1_000).unwrap_or(0),
        requested_at: c.created_at.to_rfc3339(),
        id: c.id,
        purpose: c.purpose.as_str().to_owned(),
        browser: c.from_browser,
        ip: c.from_ip,
    }
}
