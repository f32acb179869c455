//! Passkeys in the account area: a sign-in with a passkey alone (a
//! discoverable credential, offered by the browser's autofill or a button;
//! user verification makes it two factors), a passkey as a sign-in's
//! second step (an assertion of one of the user's passkeys, its counter
//! moved forward) and a passkey added from the security page
//! (discoverable). Each ceremony is bound to the browser that started it
//! (its session; before one, a secret of its own) and answers once.

use serde_json::json;
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::{Accounts, BrowserCookies, Current, SecondStep};
use crate::binding::{Proofs, Purpose};
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, CeremonyKind, ClientInfo, Stage};
use crate::notify::sms::OutgoingSms;
use crate::relying_party::Verified;
use crate::store::{FactorNotice, NewPasskey, PasskeyUse, Rate};
use crate::token::Secret;
use shared::error_code as code;

/// A ceremony's answer comes within this long of its start.
pub const CEREMONY_MS: i64 = 5 * Millis::MINUTE;
/// Passkey sign-ins started per client address (each page of the sign-in
/// form starts one for the autofill): sixty at once, then one a second.
const STARTS_PER_CLIENT: Rate = Rate { burst: 60, interval_ms: Millis::SECOND };

/// The challenge of a sign-in with a passkey alone, and the secret its
/// finish names.
#[derive(Debug)]
pub struct PasskeySignIn {
    pub challenge: RequestChallengeResponse,
    pub ceremony: Secret,
}

impl Accounts {
    /// Starts a sign-in with a passkey alone: no email, the authenticator
    /// offers the user's discoverable passkeys.
    pub async fn start_passkey_sign_in(&self, client: &ClientInfo) -> Result<PasskeySignIn> {
        let now = self.clock.now();
        let address = client.rate_key();
        if let Err(wait_ms) = self.store.take_rates(&[(format!("passkey_sign_in:client:{address}"), STARTS_PER_CLIENT)], now).await? {
            return Err(super::slowed("Too many passkey sign-ins from here: wait a moment before trying again", wait_ms));
        }
        let (challenge, state) = self.relying_party.start_discoverable_authentication()?;
        let ceremony = Secret::generate()?;
        self.store.save_sign_in_ceremony(&ceremony.hash(), &state, now).await?;
        Ok(PasskeySignIn { challenge, ceremony })
    }

    /// Finishes it: the passkey's owner is signed in, with both factors
    /// (the passkey is possession, its user verification knowledge or
    /// inherence), under a new session secret.
    pub async fn finish_passkey_sign_in(
        &self,
        cookies: BrowserCookies<'_>,
        ceremony: &str,
        answer: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<Current> {
        let not_before = self.clock.now().plus_millis(-CEREMONY_MS);
        let state = match Secret::parse(ceremony) {
            Ok(ceremony) => self.store.take_sign_in_ceremony(&ceremony.hash(), not_before).await?,
            Err(_) => None,
        };
        let state = state.ok_or_else(Error::ceremony_not_started)?;
        let handle = self.relying_party.claimed_user(answer)?;
        let user = self.store.user_by_webauthn_handle(&handle).await?.ok_or_else(unknown_passkey)?;
        let passkeys = self.store.passkeys_of_user(&user.id).await?;
        let verified = match self.relying_party.finish_discoverable_authentication(&state, passkeys, answer) {
            Ok(verified) => verified,
            Err(e) => {
                let event =
                    AuditEvent::account(AuditKind::SignInRefused, Some(&user.id), json!({"via": "passkey"}), client, self.clock.now());
                self.store.append_audit(&event).await?;
                return Err(e);
            }
        };
        let event = AuditEvent::account(AuditKind::FactorUsed, Some(&user.id), json!({"factor": "passkey"}), client, self.clock.now());
        self.record_sign_in_use(&verified, &event).await?;
        let proofs = Proofs::both(self.clock.now());
        self.open(user, Stage::SignedIn, cookies.session, Some("passkey"), proofs, client).await
    }

    /// The passkey's counter moves forward, or the sign-in is refused.
    async fn record_sign_in_use(&self, verified: &Verified, event: &AuditEvent) -> Result<()> {
        let used =
            PasskeyUse { passkey: &verified.passkey, new_sign_count: verified.new_sign_count, evidence: None, now: self.clock.now() };
        if self.store.record_passkey_sign_in(used, event).await? {
            return Ok(());
        }
        // A possibly cloned authenticator: the account's activity shows it.
        let mut refused = event.clone();
        refused.kind = AuditKind::FactorRefused;
        refused.detail = json!({
            "factor": "passkey",
            "passkey_id": verified.passkey.id,
            "reason": "counter_not_advanced",
            "sign_count": verified.new_sign_count,
            "stored_sign_count": verified.passkey.sign_count,
        });
        self.store.append_audit(&refused).await?;
        Err(Error::PasskeyRejected("The passkey's signature counter did not move forward: a copy of it may exist".into()))
    }

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
        self.verify_own_passkey(current, answer, client).await?;
        self.second_step_done(current, "passkey", trust, client).await
    }

    /// Answers the session's pending passkey challenge with one of the
    /// user's passkeys: verified (user verification required), its
    /// counter moved forward, logged either way.
    pub(super) async fn verify_own_passkey(&self, current: &Current, answer: &PublicKeyCredential, client: &ClientInfo) -> Result<()> {
        let state = self.take_ceremony(current, CeremonyKind::Authentication).await?;
        let passkeys = self.store.passkeys_of_user(&current.user.id).await?;
        let verified = match self.relying_party.finish_authentication(&state, passkeys, answer) {
            Ok(verified) => verified,
            Err(e) => {
                self.store.append_audit(&self.factor_event(AuditKind::FactorRefused, current, "passkey", client)).await?;
                return Err(e);
            }
        };
        self.record_sign_in_use(&verified, &self.factor_event(AuditKind::FactorUsed, current, "passkey", client)).await
    }

    /// The challenge to create a new passkey for the signed-in user, once
    /// two factors are proven (`crate::binding`).
    pub async fn start_passkey_add(&self, current: &Current) -> Result<CreationChallengeResponse> {
        self.require_binding(current, Purpose::Bind).await?;
        let existing = self.store.passkeys_of_user(&current.user.id).await?;
        let (challenge, state) = self.relying_party.start_discoverable_registration(&current.user, &existing)?;
        self.store.save_account_ceremony(&current.token.hash(), CeremonyKind::Registration, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    /// Binds the new passkey (the rule is checked again: the proofs may
    /// have aged since the start); logged by its credential id, and told
    /// to the user by SMS.
    pub async fn finish_passkey_add(&self, current: &Current, answer: &RegisterPublicKeyCredential, client: &ClientInfo) -> Result<()> {
        self.require_binding(current, Purpose::Bind).await?;
        let state = self.take_ceremony(current, CeremonyKind::Registration).await?;
        let passkey = self.relying_party.finish_registration(&state, answer)?;
        let now = self.clock.now();
        let credential_id = base64_url(passkey.cred_id().as_ref());
        let detail = json!({"factor": "passkey", "via": "account", "credential_id": credential_id});
        let audit = AuditEvent::account(AuditKind::FactorAdded, Some(&current.user.id), detail, client, now);
        let sms = OutgoingSms::factor_added(current.user.phone.clone(), "a passkey", &self.security_page, now, self.outbox_copy.clone());
        let attestation = base64_url(answer.response.attestation_object.as_ref());
        let new =
            NewPasskey { user_id: &current.user.id, passkey: &passkey, attestation: Some(&attestation), sign_count: 0, name: None, now };
        if !self.store.add_passkey(new, FactorNotice { audit: &audit, sms: &sms }).await? {
            return Err(Error::Conflict { code: code::CREDENTIAL_IN_USE, message: "This passkey belongs to an account already" });
        }
        self.deliver(&sms).await;
        Ok(())
    }

    pub(super) async fn take_ceremony(&self, current: &Current, kind: CeremonyKind) -> Result<String> {
        let not_before = self.clock.now().plus_millis(-CEREMONY_MS);
        self.store.take_account_ceremony(&current.token.hash(), kind, not_before).await?.ok_or_else(Error::ceremony_not_started)
    }
}

pub(super) fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A passkey whose user handle names nobody here (a passkey of another
/// site's account with our RP ID, or of a removed account).
fn unknown_passkey() -> Error {
    Error::PasskeyRejected("This passkey belongs to no account here".into())
}
