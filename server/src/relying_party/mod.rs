//! The WebAuthn relying party: webauthn-rs behind a small, pure API. It
//! keeps no state: a ceremony's start returns the state to save, its finish
//! takes the saved state back (the SCA domain saves it in the database,
//! bound to one SCA session, so that any Passgate process can finish a
//! ceremony another one started). User verification is required
//! throughout; origin and RP ID are checked by webauthn-rs; an answer made
//! in a cross-origin frame is refused at registration and authentication
//! alike.

use std::sync::Arc;

use url::Url;
use uuid::Uuid;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};
use webauthn_rs_proto::{AuthenticatorAttachment, ResidentKeyRequirement};

use crate::audit::verify::{client_data_cross_origin, issued_challenge, AssertionEvidence};
use crate::error::{Error, Result};
use crate::model::{StoredPasskey, UserRecord};

#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<Webauthn>,
    rp_id: Arc<str>,
    origin: Url,
}

/// A verified assertion: the passkey used, with its counter and backup
/// flags updated (to be persisted), and the evidence of the approval.
#[derive(Debug)]
pub struct Verified {
    pub passkey: StoredPasskey,
    pub new_sign_count: u32,
    pub evidence: AssertionEvidence,
}

impl RelyingParty {
    /// Fails (at start-up) when the RP ID is not the origin's host or a
    /// registrable suffix of it.
    pub fn new(rp_id: &str, origin: &Url) -> anyhow::Result<Self> {
        let webauthn = WebauthnBuilder::new(rp_id, origin)
            .and_then(|b| b.rp_name("Passgate").build())
            .map_err(|e| anyhow::anyhow!("invalid WebAuthn settings (RP ID {rp_id:?}, origin {origin}): {e}"))?;
        Ok(RelyingParty { webauthn: Arc::new(webauthn), rp_id: rp_id.into(), origin: origin.clone() })
    }

    /// The challenge for the browser, and the state to save until the answer.
    pub fn start_registration(&self, user: &UserRecord) -> Result<(CreationChallengeResponse, String)> {
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(user.webauthn_handle, credential_name(user), &user.display_name, None)
            .map_err(internal)?;
        Ok((challenge, serde_json::to_string(&state)?))
    }

    /// A passkey added from the account area: discoverable (resident), so
    /// that it can sign in without an email, and not one of `existing`
    /// again on the same authenticator.
    pub fn start_discoverable_registration(
        &self,
        user: &UserRecord,
        existing: &[StoredPasskey],
    ) -> Result<(CreationChallengeResponse, String)> {
        let exclude = existing.iter().map(|p| p.passkey.cred_id().clone()).collect();
        let (mut challenge, state) = self
            .webauthn
            .start_passkey_registration(user.webauthn_handle, credential_name(user), &user.display_name, Some(exclude))
            .map_err(internal)?;
        // webauthn-rs asks for a discouraged resident key; the verification
        // does not depend on it (user verification stays required).
        if let Some(selection) = challenge.public_key.authenticator_selection.as_mut() {
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        Ok((challenge, serde_json::to_string(&state)?))
    }

    /// A paired phone's passkey: made by the phone's own (platform)
    /// authenticator, discoverable, user verification required. It gets a
    /// user handle of its own: a phone's provider replaces a passkey of the
    /// same site and handle, which would take away the account's synced
    /// passkey; the phone's passkey is found by its credential id instead.
    pub fn start_phone_registration(&self, user: &UserRecord) -> Result<(CreationChallengeResponse, String)> {
        let display_name = format!("{} (paired phone)", user.display_name);
        let (mut challenge, state) =
            self.webauthn.start_passkey_registration(Uuid::new_v4(), credential_name(user), &display_name, None).map_err(internal)?;
        if let Some(selection) = challenge.public_key.authenticator_selection.as_mut() {
            selection.authenticator_attachment = Some(AuthenticatorAttachment::Platform);
            selection.resident_key = Some(ResidentKeyRequirement::Required);
            selection.require_resident_key = true;
        }
        Ok((challenge, serde_json::to_string(&state)?))
    }

    /// Verifies a new credential against the saved registration state.
    /// `Error::PasskeyRejected`: the answer is refused (the caller burns
    /// the challenge).
    pub fn finish_registration(&self, saved: &str, answer: &RegisterPublicKeyCredential) -> Result<Passkey> {
        let state: PasskeyRegistration = serde_json::from_str(saved)?;
        if client_data_cross_origin(answer.response.client_data_json.as_ref()) {
            return Err(cross_origin());
        }
        self.webauthn.finish_passkey_registration(answer, &state).map_err(rejected)
    }

    pub fn start_authentication(&self, passkeys: &[StoredPasskey]) -> Result<(RequestChallengeResponse, String)> {
        let keys: Vec<Passkey> = passkeys.iter().map(|p| p.passkey.clone()).collect();
        let (challenge, state) = self.webauthn.start_passkey_authentication(&keys).map_err(internal)?;
        Ok((challenge, serde_json::to_string(&state)?))
    }

    /// Verifies an assertion against the saved authentication state and
    /// the user's passkeys. `Error::PasskeyRejected`: refused.
    pub fn finish_authentication(&self, saved: &str, passkeys: Vec<StoredPasskey>, answer: &PublicKeyCredential) -> Result<Verified> {
        let state: PasskeyAuthentication = serde_json::from_str(saved)?;
        refuse_cross_origin(answer)?;
        let result = self.webauthn.finish_passkey_authentication(answer, &state).map_err(rejected)?;
        self.verified(result, passkeys, answer, saved)
    }

    /// The challenge of a sign-in with a passkey alone: no credential is
    /// named, the authenticator offers the user's discoverable ones (the
    /// browser may show them in the email field's autofill).
    pub fn start_discoverable_authentication(&self) -> Result<(RequestChallengeResponse, String)> {
        let (challenge, state) = self.webauthn.start_discoverable_authentication().map_err(internal)?;
        Ok((challenge, serde_json::to_string(&state)?))
    }

    /// Whose passkey answered a discoverable challenge: the user handle
    /// the authenticator returned (not yet verified: the signature is
    /// checked against that user's passkeys only).
    pub fn claimed_user(&self, answer: &PublicKeyCredential) -> Result<Uuid> {
        self.webauthn.identify_discoverable_authentication(answer).map(|(handle, _)| handle).map_err(rejected)
    }

    /// Verifies an answer to a discoverable challenge against the passkeys
    /// of the user it claims.
    pub fn finish_discoverable_authentication(
        &self,
        saved: &str,
        passkeys: Vec<StoredPasskey>,
        answer: &PublicKeyCredential,
    ) -> Result<Verified> {
        let state: DiscoverableAuthentication = serde_json::from_str(saved)?;
        refuse_cross_origin(answer)?;
        let used = answer.get_credential_id();
        let passkey = passkeys.iter().find(|p| AsRef::<[u8]>::as_ref(p.passkey.cred_id()) == used).ok_or_else(not_theirs)?;
        let result = self.webauthn.finish_discoverable_authentication_v2(answer, state, &passkey.passkey).map_err(rejected)?;
        self.verified(result, passkeys, answer, saved)
    }

    /// A verified assertion's passkey, its counter and backup flags
    /// updated, and the evidence.
    /// The evidence keeps the challenge of the saved state (`saved`), the
    /// one issued, not the answer's copy of it.
    fn verified(
        &self,
        result: AuthenticationResult,
        mut passkeys: Vec<StoredPasskey>,
        answer: &PublicKeyCredential,
        saved: &str,
    ) -> Result<Verified> {
        // webauthn-rs requires user verification for passkeys; say it twice.
        if !result.user_verified() {
            return Err(Error::PasskeyRejected("The passkey did not verify you (user verification is required)".into()));
        }
        let index = passkeys.iter_mut().position(|p| p.passkey.update_credential(&result).is_some()).ok_or_else(not_theirs)?;
        let passkey = passkeys.swap_remove(index);
        let evidence = issued_challenge(saved)
            .and_then(|challenge| AssertionEvidence::from_assertion(answer, &passkey.passkey, &challenge, &self.rp_id, &self.origin))
            .map_err(|e| Error::Internal(format!("evidence: {e}")))?;
        Ok(Verified { new_sign_count: result.counter(), passkey, evidence })
    }
}

/// The credential's `user.name`, which authenticators, password managers
/// and the account area's autofill show: the user's email (what they sign
/// in with), never their phone number; the phone only for a user who has
/// no email yet.
fn credential_name(user: &UserRecord) -> &str {
    user.email.as_ref().map_or(user.phone.as_str(), |e| e.as_str())
}

/// webauthn-rs checks crossOrigin only at registration.
fn refuse_cross_origin(answer: &PublicKeyCredential) -> Result<()> {
    if client_data_cross_origin(answer.response.client_data_json.as_ref()) {
        return Err(cross_origin());
    }
    Ok(())
}

fn internal(e: WebauthnError) -> Error {
    Error::Internal(format!("webauthn: {e}"))
}

/// A verification failure is the browser's (or an attacker's) fault: 400,
/// with the library's reason for the user.
fn rejected(e: WebauthnError) -> Error {
    Error::PasskeyRejected(format!("The passkey answer was refused: {e}"))
}

fn not_theirs() -> Error {
    Error::PasskeyRejected("This passkey is not registered to you".into())
}

fn cross_origin() -> Error {
    Error::PasskeyRejected("The passkey answer was made in a frame of another site (crossOrigin): refused".into())
}
