//! The WebAuthn relying party: webauthn-rs behind a small API. Ceremony
//! state is saved in the database, bound to one SCA session. A failed answer
//! burns it; a verified one is consumed by the transaction that acts on it,
//! so a challenge is answered successfully once, and any Passgate process
//! sharing the database can finish a ceremony that another one started. User verification is required throughout.

use std::sync::Arc;

use url::Url;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, RequestChallengeResponse, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::sca::Session;
use crate::store::passkeys::{CeremonyKind, PendingCeremony};
use crate::store::{StoredPasskey, Store, UserRecord};

#[derive(Clone)]
pub struct RelyingParty {
    webauthn: Arc<Webauthn>,
    store: Store,
}

impl RelyingParty {
    /// Fails (at start-up) when the RP ID is not the origin's host or a
    /// registrable suffix of it.
    pub fn new(rp_id: &str, origin: &Url, store: Store) -> anyhow::Result<Self> {
        let webauthn = WebauthnBuilder::new(rp_id, origin)
            .and_then(|b| b.rp_name("Passgate").build())
            .map_err(|e| anyhow::anyhow!("invalid WebAuthn settings (RP ID {rp_id:?}, origin {origin}): {e}"))?;
        Ok(RelyingParty { webauthn: Arc::new(webauthn), store })
    }

    pub async fn start_registration(&self, session: &Session, user: &UserRecord, now: Millis) -> Result<CreationChallengeResponse> {
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(user.webauthn_handle, user.phone.as_str(), &user.display_name, None)
            .map_err(internal)?;
        self.save(session, CeremonyKind::Registration, &state, now).await?;
        Ok(challenge)
    }

    /// Verifies the new credential against the session's pending
    /// registration; the caller stores it and consumes the ceremony in one
    /// transaction.
    pub async fn finish_registration(
        &self,
        ceremony: Option<PendingCeremony>,
        answer: &RegisterPublicKeyCredential,
    ) -> Result<(webauthn_rs::prelude::Passkey, PendingCeremony)> {
        let (state, ceremony): (PasskeyRegistration, _) = pending(ceremony)?;
        match self.webauthn.finish_passkey_registration(answer, &state) {
            Ok(passkey) => Ok((passkey, ceremony)),
            Err(e) => Err(self.burn(&ceremony, e).await),
        }
    }

    pub async fn start_authentication(
        &self,
        session: &Session,
        passkeys: &[StoredPasskey],
        now: Millis,
    ) -> Result<RequestChallengeResponse> {
        let keys: Vec<_> = passkeys.iter().map(|p| p.passkey.clone()).collect();
        let (challenge, state) = self.webauthn.start_passkey_authentication(&keys).map_err(internal)?;
        self.save(session, CeremonyKind::Authentication, &state, now).await?;
        Ok(challenge)
    }

    /// Verifies the assertion against the session's pending authentication
    /// and the user's passkeys; returns the one used, its counter and
    /// backup flags updated (to be persisted).
    pub async fn finish_authentication(
        &self,
        ceremony: Option<PendingCeremony>,
        mut passkeys: Vec<StoredPasskey>,
        answer: &PublicKeyCredential,
    ) -> Result<(StoredPasskey, PendingCeremony)> {
        let (state, ceremony): (PasskeyAuthentication, _) = pending(ceremony)?;
        let result = match self.webauthn.finish_passkey_authentication(answer, &state) {
            Ok(result) => result,
            Err(e) => return Err(self.burn(&ceremony, e).await),
        };
        // webauthn-rs requires user verification for passkeys; say it twice.
        if !result.user_verified() {
            self.store.discard_ceremony(&ceremony).await?;
            return Err(Error::PasskeyRejected("The passkey did not verify you (user verification is required)".into()));
        }
        let Some(index) = passkeys.iter_mut().position(|p| p.passkey.update_credential(&result).is_some()) else {
            self.store.discard_ceremony(&ceremony).await?;
            return Err(Error::PasskeyRejected("This passkey is not registered to you".into()));
        };
        Ok((passkeys.swap_remove(index), ceremony))
    }

    async fn save<T: serde::Serialize>(&self, session: &Session, kind: CeremonyKind, state: &T, now: Millis) -> Result<()> {
        let json = serde_json::to_string(state)?;
        self.store.save_ceremony(&session.id, kind, &json, now).await
    }

    /// A refused answer burns its challenge: the browser must start again.
    async fn burn(&self, ceremony: &PendingCeremony, e: WebauthnError) -> Error {
        match self.store.discard_ceremony(ceremony).await {
            Ok(()) => rejected(e),
            Err(db) => db,
        }
    }
}

/// The saved state of a started ceremony.
fn pending<T: serde::de::DeserializeOwned>(ceremony: Option<PendingCeremony>) -> Result<(T, PendingCeremony)> {
    let ceremony = ceremony.ok_or_else(Error::ceremony_not_started)?;
    Ok((serde_json::from_str(&ceremony.state)?, ceremony))
}

fn internal(e: WebauthnError) -> Error {
    Error::Internal(format!("webauthn: {e}"))
}

/// A verification failure is the browser's (or an attacker's) fault: 400,
/// with the library's reason for the user.
fn rejected(e: WebauthnError) -> Error {
    Error::PasskeyRejected(format!("The passkey answer was refused: {e}"))
}
