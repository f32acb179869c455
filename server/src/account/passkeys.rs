//! Passkeys in the account area: a passkey as a sign-in's second step (an
//! assertion of one of the user's passkeys, its counter moved forward) and
//! a passkey added from the security page (discoverable). Each ceremony is
//! bound to the browser session that started it and answers once.

use serde_json::json;
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::{Accounts, Current, SecondStep};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{AuditKind, CeremonyKind, ClientInfo};
use crate::store::{NewPasskey, PasskeyUse};
use shared::error_code as code;

/// A ceremony's answer comes within this long of its start.
const CEREMONY_MS: i64 = 5 * Millis::MINUTE;

impl Accounts {
    /// The challenge of a passkey second step.
    pub async fn start_passkey_step(&self, current: &Current) -> Result<RequestChallengeResponse> {
        self.second_step_due(current)?;
        let passkeys = self.store.passkeys_of_user(&current.user.id).await?;
        if passkeys.is_empty() {
            return Err(Error::Conflict { code: code::NO_PASSKEY, message: "You have no passkey: use your authenticator app" });
        }
        let (challenge, state) = self.relying_party.start_authentication(&passkeys)?;
        self.store.save_account_ceremony(&current.token.hash(), CeremonyKind::Authentication, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    /// Verifies the assertion; the session moves on (and, with `trust`,
    /// the browser is trusted).
    pub async fn finish_passkey_step(
        &self,
        current: &Current,
        answer: &PublicKeyCredential,
        trust: bool,
        client: &ClientInfo,
    ) -> Result<SecondStep> {
        self.second_step_due(current)?;
        let state = self.take_ceremony(current, CeremonyKind::Authentication).await?;
        let passkeys = self.store.passkeys_of_user(&current.user.id).await?;
        let verified = match self.relying_party.finish_authentication(&state, passkeys, answer) {
            Ok(verified) => verified,
            Err(e) => {
                self.store.append_audit(&self.factor_event(AuditKind::FactorRefused, current, "passkey", client)).await?;
                return Err(e);
            }
        };
        let now = self.clock.now();
        let used = PasskeyUse { passkey: &verified.passkey, new_sign_count: verified.new_sign_count, evidence: None, now };
        let event = self.factor_event(AuditKind::FactorUsed, current, "passkey", client);
        if !self.store.record_passkey_sign_in(used, &event).await? {
            return Err(Error::PasskeyRejected("The passkey's signature counter did not move forward: a copy of it may exist".into()));
        }
        self.second_step_done(current, "passkey", trust, client).await
    }

    /// The challenge to create a new passkey for the signed-in user.
    pub async fn start_passkey_add(&self, current: &Current) -> Result<CreationChallengeResponse> {
        let existing = self.store.passkeys_of_user(&current.user.id).await?;
        let (challenge, state) = self.relying_party.start_discoverable_registration(&current.user, &existing)?;
        self.store.save_account_ceremony(&current.token.hash(), CeremonyKind::Registration, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    pub async fn finish_passkey_add(&self, current: &Current, answer: &RegisterPublicKeyCredential, client: &ClientInfo) -> Result<()> {
        let state = self.take_ceremony(current, CeremonyKind::Registration).await?;
        let passkey = self.relying_party.finish_registration(&state, answer)?;
        let now = self.clock.now();
        let mut event = self.factor_event(AuditKind::FactorAdded, current, "passkey", client);
        event.detail = json!({"factor": "passkey", "via": "account"});
        let new = NewPasskey { user_id: &current.user.id, passkey: &passkey, sign_count: 0, name: None, now };
        if self.store.add_passkey(new, &event).await? {
            Ok(())
        } else {
            Err(Error::Conflict { code: code::CREDENTIAL_IN_USE, message: "This passkey belongs to an account already" })
        }
    }

    async fn take_ceremony(&self, current: &Current, kind: CeremonyKind) -> Result<String> {
        let not_before = self.clock.now().plus_millis(-CEREMONY_MS);
        self.store.take_account_ceremony(&current.token.hash(), kind, not_before).await?.ok_or_else(Error::ceremony_not_started)
    }
}
