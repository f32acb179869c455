//! The user's side, from the SMS link: what the approval page reads and the
//! decisions it sends. The link secret is the only key; every decision also
//! needs the session to be waiting and fresh.

use shared::{error_code, ApprovalOutcome, ApprovalState, ApprovalView};
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::{Decision, Sca};
use crate::error::{Error, Result};
use crate::store::passkeys::{CeremonyKind, LinkedSession};
use crate::token::Secret;

const NOT_FOUND: Error = Error::NotFound("This approval link is not valid");

impl Sca {
    pub async fn approval(&self, link: &str) -> Result<ApprovalView> {
        let linked = self.linked_session(link, None).await?;
        let now = self.clock.now();
        let session = &linked.session;
        Ok(ApprovalView {
            partner_name: linked.partner_name,
            action: session.summary.clone(),
            state: session.approval_state(now),
            seconds_left: session.seconds_left(now),
            has_passkey: !linked.passkeys.is_empty(),
        })
    }

    pub async fn deny(&self, link: &str) -> Result<ApprovalOutcome> {
        let linked = self.open_session(link, Decision::Deny, None).await?;
        if self.store.decide_session(&linked.session.id, super::State::Deny, self.clock.now()).await? {
            Ok(ApprovalOutcome { state: ApprovalState::Denied })
        } else {
            Err(Error::approval_closed())
        }
    }

    /// First passkey: offered only while the user has none, since the link
    /// proves possession of the phone once and must not add a second key.
    pub async fn start_passkey_registration(&self, link: &str) -> Result<CreationChallengeResponse> {
        let linked = self.open_session(link, Decision::Allow, None).await?;
        if !linked.passkeys.is_empty() {
            return Err(Error::passkey_exists());
        }
        let user = self.store.user(&linked.session.owner.user_id).await?;
        self.relying_party.start_registration(&linked.session, &user, self.clock.now()).await
    }

    pub async fn finish_passkey_registration(&self, link: &str, answer: &RegisterPublicKeyCredential) -> Result<ApprovalOutcome> {
        let linked = self.open_session(link, Decision::Allow, Some(CeremonyKind::Registration)).await?;
        let (passkey, ceremony) = self.relying_party.finish_registration(linked.ceremony, answer).await?;
        self.store
            .enrol_first_passkey_and_allow(&ceremony, &linked.session.owner.user_id, &passkey, self.clock.now())
            .await?;
        Ok(ApprovalOutcome { state: ApprovalState::Allowed })
    }

    pub async fn start_passkey_authentication(&self, link: &str) -> Result<RequestChallengeResponse> {
        let linked = self.open_session(link, Decision::Allow, None).await?;
        if linked.passkeys.is_empty() {
            return Err(Error::Conflict { code: error_code::NO_PASSKEY, message: "You have no passkey yet: create one" });
        }
        self.relying_party.start_authentication(&linked.session, &linked.passkeys, self.clock.now()).await
    }

    pub async fn finish_passkey_authentication(&self, link: &str, answer: &PublicKeyCredential) -> Result<ApprovalOutcome> {
        let linked = self.open_session(link, Decision::Allow, Some(CeremonyKind::Authentication)).await?;
        let (used, ceremony) = self.relying_party.finish_authentication(linked.ceremony, linked.passkeys, answer).await?;
        self.store.record_passkey_use_and_allow(&ceremony, &used, self.clock.now()).await?;
        Ok(ApprovalOutcome { state: ApprovalState::Allowed })
    }

    async fn linked_session(&self, link: &str, ceremony: Option<CeremonyKind>) -> Result<LinkedSession> {
        let link = Secret::parse(link).map_err(|_| NOT_FOUND)?;
        self.store.session_by_link(&link.hash(), ceremony).await?.ok_or(NOT_FOUND)
    }

    /// The link's session, if the user may still take `decision` on it.
    async fn open_session(&self, link: &str, decision: Decision, ceremony: Option<CeremonyKind>) -> Result<LinkedSession> {
        let linked = self.linked_session(link, ceremony).await?;
        linked.session.decide(decision, self.clock.now()).map_err(|_| Error::approval_closed())?;
        Ok(linked)
    }
}
