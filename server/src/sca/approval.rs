//! The user's side, from the SMS link: what the approval page reads and the
//! decisions it sends. The link secret is the only key; every decision also
//! needs the session to be waiting and fresh. Ceremony state is saved
//! through storage, bound to the link's session; a refused answer burns
//! it; a verified one is consumed by the transaction that acts on it: an
//! assertion's allows the session, keeping the evidence and the audit
//! event; a first passkey's registration enrols it, and the session waits
//! for an assertion of that passkey (a registration signs nothing of the
//! approval: every approval keeps a signature over its action).

use serde_json::json;
use shared::{error_code, ApprovalOutcome, ApprovalState, ApprovalView};
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::failures::Blocked;
use super::{Decision, Sca};
use crate::audit::evidence::{ApprovalEvidence, Bound};
use crate::error::{Error, PasswordRefusal, Result};
use crate::model::{AuditEvent, CeremonyKind, ClientInfo, LinkedSession, PendingCeremony, Session, UserRecord};
use crate::notify::sms::OutgoingSms;
use crate::password::CheckGate;
use crate::relying_party::Verified;
use crate::store::{Approved, Enrolment, Lookup, PasskeyUse};
use crate::token::Secret;

const NOT_FOUND: Error = Error::NotFound("This approval link is not valid");

/// Wrong passwords a link allows before its first passkey (PSD2 RTS art. 4).
pub const LINK_PASSWORD_ATTEMPTS: u32 = 5;

impl Sca {
    pub async fn approval(&self, link: &str) -> Result<ApprovalView> {
        // The page shows what it read: only once it is durable.
        let linked = self.linked_session(link, None, Lookup::Settled).await?;
        let now = self.clock.now();
        let session = &linked.session;
        let state = session.approval_state(now);
        Ok(ApprovalView {
            partner_name: linked.partner_name,
            // What the operation is, only while it waits for the user.
            action: (state == ApprovalState::Waiting).then(|| session.summary.clone()),
            state,
            seconds_left: session.seconds_left(now),
            has_passkey: !linked.passkeys.is_empty(),
        })
    }

    pub async fn deny(&self, link: &str, client: &ClientInfo) -> Result<ApprovalOutcome> {
        let linked = self.open_session(link, Decision::Deny, None).await?;
        let now = self.clock.now();
        let event = AuditEvent::session_decided(&linked.session, "deny", json!({"method": "approval_link"}), client, now);
        if self.store.decide_session(&linked.session.id, super::State::Deny, now, &event, None).await? {
            super::guard::decided(linked.session.method, super::State::Deny);
            Ok(ApprovalOutcome { state: ApprovalState::Denied })
        } else {
            Err(Error::approval_closed())
        }
    }

    /// First passkey: offered only while the user has none, since the link
    /// proves possession of the phone once and must not add a second key.
    /// The first passkey from a link needs the user's password too: the
    /// link proves possession of the phone, the password knowledge.
    pub async fn start_passkey_registration(&self, link: &str, password: &str, client: &ClientInfo) -> Result<CreationChallengeResponse> {
        let linked = self.open_session(link, Decision::Allow, None).await?;
        if !linked.passkeys.is_empty() {
            return Err(Error::passkey_exists());
        }
        let user = self.store.user(&linked.session.owner.user_id).await?.ok_or(NOT_FOUND)?;
        self.check_link_password(&linked.session, &user, password, client).await?;
        let (challenge, state) = self.relying_party.start_registration(&user)?;
        self.store.save_ceremony(&linked.session.id, CeremonyKind::Registration, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    /// At most [`LINK_PASSWORD_ATTEMPTS`] wrong passwords per link, and
    /// five in a row per user across links and codes (`failures`): each
    /// attempt is reserved in the database before the (slow) check, so
    /// that concurrent guesses, on any instance, cannot exceed it together.
    async fn check_link_password(&self, session: &Session, user: &UserRecord, password: &str, client: &ClientInfo) -> Result<()> {
        let Some(hash) = user.password.clone() else {
            return Err(Error::Password(PasswordRefusal::NotSet));
        };
        let attempt = match self.failures.reserve(&user.id).await? {
            Ok(attempt) => attempt,
            Err(blocked) => return Err(self.blocked(blocked)),
        };
        if !self.store.reserve_attempt(&session.id, LINK_PASSWORD_ATTEMPTS).await? {
            return Err(Error::Password(PasswordRefusal::Locked));
        }
        let right = match CheckGate::shared().verify(hash, password).await {
            Ok(Some(right)) => right,
            Ok(None) => return Err(Error::Internal("the password check failed".into())),
            // The reserved attempt stays spent: a flood of guesses gains nothing.
            Err(busy) => return Err(busy.into()),
        };
        if right {
            self.store.refund_attempt(&session.id).await?;
            self.failures.succeeded(attempt).await?;
            self.store.append_audit(&AuditEvent::password_accepted(session, client, self.clock.now())).await?;
            return Ok(());
        }
        let user_left = attempt.left();
        let blocked = self.failures.failed(attempt, &user.phone, client).await?;
        let attempts_left = self.store.attempts_left(&session.id, LINK_PASSWORD_ATTEMPTS).await?.min(user_left);
        self.store.append_audit(&AuditEvent::password_refused(session, attempts_left, client, self.clock.now())).await?;
        if let Some(blocked) = blocked {
            return Err(self.blocked(blocked));
        }
        Err(Error::Password(if attempts_left == 0 { PasswordRefusal::Locked } else { PasswordRefusal::Invalid { attempts_left } }))
    }

    fn blocked(&self, blocked: Blocked) -> Error {
        Error::Password(PasswordRefusal::Blocked { retry_after_secs: blocked.seconds_from(self.clock.now()) })
    }

    /// Enrols the first passkey; the session stays waiting. The page then
    /// asks for an assertion of the new passkey over a fresh, action-bound
    /// challenge (`authenticate/start` and `finish`): that is what allows
    /// the session, with verifiable evidence.
    pub async fn finish_passkey_registration(
        &self,
        link: &str,
        answer: &RegisterPublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<ApprovalOutcome> {
        let linked = self.open_session(link, Decision::Allow, Some(CeremonyKind::Registration)).await?;
        let ceremony = linked.ceremony.as_ref().ok_or_else(Error::ceremony_not_started)?;
        let passkey = match self.relying_party.finish_registration(&ceremony.state, answer) {
            Ok(passkey) => passkey,
            Err(e) => return Err(self.burn(&linked, ceremony, e, client).await),
        };
        let now = self.clock.now();
        let credential_id = base64_url(passkey.cred_id().as_ref());
        // The attestation is kept in the credential registry.
        let attestation = base64_url(answer.response.attestation_object.as_ref());
        let event = AuditEvent::passkey_enrolled(&linked.session, &credential_id, client, now);
        let user = self.store.user(&linked.session.owner.user_id).await?.ok_or(NOT_FOUND)?;
        let notice = OutgoingSms::passkey_added(user.phone, &self.security_page, now, self.outbox_copy());
        let enrolment = Enrolment {
            user_id: &linked.session.owner.user_id,
            passkey: &passkey,
            sign_count: 0,
            attestation: Some(&attestation),
            notice: Some(&notice),
            now,
        };
        let enrolled = self.store.enrol_first_passkey(ceremony, enrolment, &event).await?;
        self.accepted(enrolled, &linked, ceremony, client).await?;
        // Stored with the passkey; a failed hand-off stays in the outbox.
        if let Err(e) = self.sms.deliver(&notice).await {
            tracing::warn!(error = %e, "sms delivery failed");
        }
        Ok(ApprovalOutcome { state: ApprovalState::Waiting })
    }

    pub async fn start_passkey_authentication(&self, link: &str) -> Result<RequestChallengeResponse> {
        let linked = self.open_session(link, Decision::Allow, None).await?;
        if linked.passkeys.is_empty() {
            return Err(Error::Conflict { code: error_code::NO_PASSKEY, message: "You have no passkey yet: create one" });
        }
        let (challenge, state) = self.relying_party.start_authentication(&linked.passkeys)?;
        self.store.save_ceremony(&linked.session.id, CeremonyKind::Authentication, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    pub async fn finish_passkey_authentication(
        &self,
        link: &str,
        answer: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<ApprovalOutcome> {
        let mut linked = self.open_session(link, Decision::Allow, Some(CeremonyKind::Authentication)).await?;
        let ceremony = linked.ceremony.take().ok_or_else(Error::ceremony_not_started)?;
        let passkeys = std::mem::take(&mut linked.passkeys);
        let verified = match self.relying_party.finish_authentication(&ceremony.state, passkeys, answer) {
            Ok(verified) => verified,
            Err(e) => return Err(self.burn(&linked, &ceremony, e, client).await),
        };
        let now = self.clock.now();
        let evidence = self.assertion_evidence(&linked, &verified)?;
        let event = AuditEvent::session_decided(
            &linked.session,
            "allow",
            json!({"method": "passkey", "passkey_id": verified.passkey.id}),
            client,
            now,
        );
        let used = PasskeyUse { passkey: &verified.passkey, new_sign_count: verified.new_sign_count, evidence: Some(&evidence), now };
        let approved = self.store.record_passkey_use_and_allow(&ceremony, used, &event).await?;
        self.accepted(approved, &linked, &ceremony, client).await?;
        super::guard::decided(linked.session.method, super::State::Allow);
        Ok(ApprovalOutcome { state: ApprovalState::Allowed })
    }

    /// The evidence of an approval by a passkey's assertion: the
    /// assertion as signed, bound (MAC) to the session, the request and
    /// what the user was shown.
    pub(super) fn assertion_evidence(&self, linked: &LinkedSession, verified: &Verified) -> Result<String> {
        let fingerprint = linked.session.fingerprint.hex();
        let bound = Bound {
            challenge: &verified.evidence.challenge,
            session_id: &linked.session.id,
            fingerprint: &fingerprint,
            partner_name: &linked.partner_name,
            summary: &linked.session.summary,
            shown: "",
        };
        let binding_mac = self.evidence_key.bind(&bound)?;
        Ok(ApprovalEvidence::Authentication {
            session_id: &linked.session.id,
            partner_name: &linked.partner_name,
            summary: &linked.session.summary,
            fingerprint: &fingerprint,
            passkey_id: &verified.passkey.id,
            assertion: &verified.evidence,
            binding_mac: &binding_mac,
        }
        .to_json()?)
    }

    /// Whether storage took a verified ceremony's answer; a counter that
    /// did not move forward also burns the challenge.
    pub(super) async fn accepted(
        &self,
        approved: Approved,
        linked: &LinkedSession,
        ceremony: &PendingCeremony,
        client: &ClientInfo,
    ) -> Result<()> {
        match refusal(approved) {
            None => Ok(()),
            Some(error @ Error::PasskeyRejected(_)) => Err(self.burn(linked, ceremony, error, client).await),
            Some(error) => Err(error),
        }
    }

    /// A refused answer burns its challenge (the browser must start again)
    /// and is logged; other errors pass through.
    pub(super) async fn burn(&self, linked: &LinkedSession, ceremony: &PendingCeremony, error: Error, client: &ClientInfo) -> Error {
        let Error::PasskeyRejected(reason) = &error else {
            return error;
        };
        metrics::counter!("passgate_webauthn_failures_total", "ceremony" => ceremony.kind.as_str()).increment(1);
        let event = AuditEvent::webauthn_failed(&linked.session, ceremony.kind.as_str(), reason, client, self.clock.now());
        match self.store.discard_ceremony(ceremony, &event).await {
            Ok(()) => error,
            Err(db) => db.into(),
        }
    }

    async fn linked_session(&self, link: &str, ceremony: Option<CeremonyKind>, lookup: Lookup) -> Result<LinkedSession> {
        let link = Secret::parse(link).map_err(|_| NOT_FOUND)?;
        self.store.session_by_link(&link.hash(), ceremony, lookup).await?.ok_or(NOT_FOUND)
    }

    /// The link's session, if the user may still take `decision` on it.
    /// Read without waiting for others' fsyncs: every decision checks the
    /// session again in its durable write, and a ceremony's start answers
    /// only its own challenge.
    async fn open_session(&self, link: &str, decision: Decision, ceremony: Option<CeremonyKind>) -> Result<LinkedSession> {
        let linked = self.linked_session(link, ceremony, Lookup::Rechecked).await?;
        linked.session.decide(decision, self.clock.now()).map_err(|_| Error::approval_closed())?;
        Ok(linked)
    }
}

/// Why storage did not approve, as the page reads it (`None`: approved).
fn refusal(approved: Approved) -> Option<Error> {
    Some(match approved {
        Approved::Yes => return None,
        Approved::CeremonyGone => Error::ceremony_not_started(),
        Approved::SessionClosed => Error::approval_closed(),
        Approved::PasskeyExists => Error::passkey_exists(),
        Approved::CredentialInUse => {
            Error::Conflict { code: error_code::CREDENTIAL_IN_USE, message: "This passkey is already registered to an account" }
        }
        Approved::CounterNotAdvanced => Error::PasskeyRejected(
            "The passkey's signature counter did not move forward: it may have been cloned. Try again, or contact support".into(),
        ),
    })
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(approved: Approved) -> Option<(u16, &'static str)> {
        refusal(approved).map(|e| {
            let status = e.status().as_u16();
            let code = match e {
                Error::Conflict { code, .. } => code,
                Error::PasskeyRejected(_) => error_code::PASSKEY_REJECTED,
                _ => "other",
            };
            (status, code)
        })
    }

    #[test]
    fn each_refusal_of_storage_reaches_the_page_as_its_code() {
        assert_eq!(code(Approved::Yes), None);
        assert_eq!(code(Approved::CeremonyGone), Some((409, error_code::CEREMONY_NOT_STARTED)));
        assert_eq!(code(Approved::SessionClosed), Some((409, error_code::APPROVAL_CLOSED)));
        assert_eq!(code(Approved::PasskeyExists), Some((409, error_code::PASSKEY_EXISTS)));
        assert_eq!(code(Approved::CredentialInUse), Some((409, error_code::CREDENTIAL_IN_USE)));
        assert_eq!(code(Approved::CounterNotAdvanced), Some((400, error_code::PASSKEY_REJECTED)));
    }
}
