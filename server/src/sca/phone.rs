//! The paired phone's side of `paired-device` (issue 24): with its device
//! credential the phone lists and reads its user's approvals that still
//! wait (nobody else's, nothing decided), and decides them. Approving is
//! an assertion of the phone's own passkey with user verification over a
//! fresh challenge, verified by the relying party, its counter moved
//! forward by a compare-and-set that also requires the phone to be still
//! paired, and kept as evidence as for a passkey from a link: possession
//! (the device credential and the passkey) plus inherence or knowledge
//! (user verification). Denying is final; "this wasn't me" denies,
//! reports (an audit event the company's admins see) and tells the user
//! by SMS what to do.

use serde_json::json;
use shared::{ApprovalOutcome, ApprovalState, PhoneApproval};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::{Decision, Sca, State};
use crate::error::{Error, Result};
use crate::model::{AuditEvent, CeremonyKind, ClientInfo, LinkedSession, PairedPhone, Session};
use crate::notify::OutgoingSms;
use crate::store::{Lookup, PasskeyUse};

const NOT_PENDING: Error = Error::NotFound("No such approval waiting for this phone");

impl Sca {
    /// The approvals waiting for the phone's user, newest first.
    pub async fn phone_approvals(&self, phone: &PairedPhone) -> Result<Vec<PhoneApproval>> {
        let now = self.clock.now();
        let waiting = self.store.phone_approvals(&phone.user_id, now).await?;
        Ok(waiting.into_iter().map(|(session, partner_name)| approval(session, partner_name, now)).collect())
    }

    /// One approval waiting for the phone's user.
    pub async fn phone_approval(&self, phone: &PairedPhone, id: &str) -> Result<PhoneApproval> {
        let linked = self.waiting_on(phone, id, Decision::Allow, None).await?;
        Ok(approval(linked.session, linked.partner_name, self.clock.now()))
    }

    /// The challenge the phone's passkey signs to approve.
    pub async fn start_phone_approval(&self, phone: &PairedPhone, id: &str) -> Result<RequestChallengeResponse> {
        let linked = self.waiting_on(phone, id, Decision::Allow, None).await?;
        let (challenge, state) = self.relying_party.start_authentication(std::slice::from_ref(&phone.passkey))?;
        self.store.save_ceremony(&linked.session.id, CeremonyKind::Authentication, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    /// Approves with the phone's passkey: the session allows, with its
    /// evidence, once.
    pub async fn finish_phone_approval(
        &self,
        phone: &PairedPhone,
        id: &str,
        answer: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<ApprovalOutcome> {
        let mut linked = self.waiting_on(phone, id, Decision::Allow, Some(CeremonyKind::Authentication)).await?;
        let ceremony = linked.ceremony.take().ok_or_else(Error::ceremony_not_started)?;
        let verified = match self.relying_party.finish_authentication(&ceremony.state, vec![phone.passkey.clone()], answer) {
            Ok(verified) => verified,
            Err(e) => return Err(self.burn(&linked, &ceremony, e, client).await),
        };
        let now = self.clock.now();
        let evidence = self.assertion_evidence(&linked, &verified)?;
        let by = json!({"method": "paired-device", "phone_id": phone.id});
        let event = AuditEvent::session_decided(&linked.session, "allow", by, client, now);
        let used = PasskeyUse { passkey: &verified.passkey, new_sign_count: verified.new_sign_count, evidence: Some(&evidence), now };
        let approved = self.store.record_phone_use_and_allow(&ceremony, used, &event).await?;
        self.accepted(approved, &linked, &ceremony, client).await?;
        super::guard::decided(linked.session.method, State::Allow);
        Ok(ApprovalOutcome { state: ApprovalState::Allowed })
    }

    /// Denies from the phone: final.
    pub async fn deny_on_phone(&self, phone: &PairedPhone, id: &str, client: &ClientInfo) -> Result<ApprovalOutcome> {
        let linked = self.waiting_on(phone, id, Decision::Deny, None).await?;
        let now = self.clock.now();
        let by = json!({"method": "paired-device", "phone_id": phone.id});
        let event = AuditEvent::session_decided(&linked.session, "deny", by, client, now);
        if !self.store.decide_session(&linked.session.id, State::Deny, now, &event, None).await? {
            return Err(Error::approval_closed());
        }
        super::guard::decided(linked.session.method, State::Deny);
        Ok(ApprovalOutcome { state: ApprovalState::Denied })
    }

    /// "This wasn't me": denies, reports, and tells the user what to do.
    pub async fn report_on_phone(&self, phone: &PairedPhone, id: &str, client: &ClientInfo) -> Result<ApprovalOutcome> {
        let linked = self.waiting_on(phone, id, Decision::Deny, None).await?;
        let now = self.clock.now();
        let user = self.store.user(&phone.user_id).await?.ok_or(Error::PhoneNotPaired)?;
        let sms = OutgoingSms::approval_reported(user.phone, &linked.partner_name, &self.security_page, now, self.outbox_copy());
        let event = AuditEvent::session_reported(&linked.session, &phone.id, client, now);
        if !self.store.report_session(&linked.session.id, now, &event, &sms).await? {
            return Err(Error::approval_closed());
        }
        metrics::counter!("passgate_sca_sessions_reported_total").increment(1);
        super::guard::decided(linked.session.method, State::Deny);
        if let Err(e) = self.sms.deliver(&sms).await {
            tracing::warn!(error = %e, "sms delivery failed");
        }
        Ok(ApprovalOutcome { state: ApprovalState::Denied })
    }

    /// The phone's user's approval `id`, if they may still take `decision`
    /// on it; another user's, a decided one or one that ran out is
    /// unknown to this phone. Read without waiting for others' fsyncs:
    /// every decision checks the session again in its durable write.
    async fn waiting_on(&self, phone: &PairedPhone, id: &str, decision: Decision, ceremony: Option<CeremonyKind>) -> Result<LinkedSession> {
        let linked = self.store.phone_approval(id, &phone.user_id, ceremony, Lookup::Rechecked).await?.ok_or(NOT_PENDING)?;
        linked.session.decide(decision, self.clock.now()).map_err(|_| NOT_PENDING)?;
        Ok(linked)
    }
}

pub(super) fn approval(session: Session, partner_name: String, now: crate::clock::Millis) -> PhoneApproval {
    PhoneApproval {
        seconds_left: session.seconds_left(now),
        requested_at: session.created_at.to_rfc3339(),
        id: session.id,
        partner_name,
        action: session.summary,
    }
}
