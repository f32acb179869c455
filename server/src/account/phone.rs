//! Pairing a phone from the account area (seed 000): signed in on the
//! phone's browser, the user proves the password (or a passkey) and a
//! code sent by SMS to the registered phone within five minutes
//! (`crate::binding`, [`Purpose::PairPhone`]: the step-up endpoints with
//! `?for=pair_phone`), then the phone makes a passkey with its own
//! authenticator and receives its device credential: 256 random bits,
//! kept by the phone in a cookie and here as a hash only, which lets the
//! phone read its own pending approvals (every decision still takes an
//! assertion of its passkey). One phone per user; unpairing, from the
//! phone or the account area, ends both at once. Each pairing and
//! unpairing is logged and told to the user by SMS.

use serde_json::json;
use webauthn_rs::prelude::{CreationChallengeResponse, RegisterPublicKeyCredential};

use super::passkeys::{base64_url, CEREMONY_MS};
use super::{Accounts, Current};
use crate::binding::Purpose;
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, ClientInfo, PairedPhone, UnpairedBy, UserRecord};
use crate::notify::sms::OutgoingSms;
use crate::store::{FactorNotice, NewPairedPhone, Pairing, Replacing};
use crate::token::Secret;
use shared::error_code as code;

/// How the SMS and the activity name the factor.
const WHAT: &str = "a paired phone";

impl Accounts {
    /// The user's paired phone, if one is.
    pub async fn paired_phone(&self, current: &Current) -> Result<Option<PairedPhone>> {
        Ok(self.store.paired_phone_of_user(&current.user.id).await?)
    }

    /// The challenge for the phone's passkey, once the password (or a
    /// passkey) and a code by SMS are fresh; in place of a paired phone
    /// only once that phone allowed it (`confirmations.rs`).
    pub async fn start_pairing(&self, current: &Current) -> Result<CreationChallengeResponse> {
        self.require_binding(current, Purpose::PairPhone).await?;
        if let Some(old) = self.store.paired_phone_of_user(&current.user.id).await? {
            if !self.replacement_allowed(current, &old).await? {
                return Err(already_paired());
            }
        }
        let (challenge, state) = self.relying_party.start_phone_registration(&current.user)?;
        self.store.save_pairing_ceremony(&current.token.hash(), &state, self.clock.now()).await?;
        Ok(challenge)
    }

    /// Pairs the phone whose passkey this is (the rule is checked again:
    /// the proofs may have aged since the start); returns its device
    /// credential, to hand to the phone once.
    pub async fn finish_pairing(&self, current: &Current, answer: &RegisterPublicKeyCredential, client: &ClientInfo) -> Result<Secret> {
        self.require_binding(current, Purpose::PairPhone).await?;
        let not_before = self.clock.now().plus_millis(-CEREMONY_MS);
        let state = self.store.take_pairing_ceremony(&current.token.hash(), not_before).await?.ok_or_else(Error::ceremony_not_started)?;
        let passkey = self.relying_party.finish_registration(&state, answer)?;
        let device = Secret::generate()?;
        let now = self.clock.now();
        let user = &current.user;
        let synced = crate::store::passkey_synced(&passkey)?;
        let detail = json!({"factor": "paired_phone", "credential_id": base64_url(passkey.cred_id().as_ref()), "synced": synced});
        let audit = AuditEvent::account(AuditKind::FactorAdded, Some(&user.id), detail, client, now);
        let sms = OutgoingSms::factor_added(user.phone.clone(), WHAT, &self.security_page, now, self.outbox_copy.clone());
        let attestation = base64_url(answer.response.attestation_object.as_ref());
        // In place of the paired phone, if that phone allowed it: ended
        // in the same transaction, by its own approval.
        let old = self.store.paired_phone_of_user(&user.id).await?;
        let session = current.token.hash();
        let removed = old.as_ref().map(|old| {
            let credential_id = base64_url(old.passkey.passkey.cred_id().as_ref());
            let detail =
                json!({"factor": "paired_phone", "credential_id": credential_id, "by": "phone", "by_admin": false, "replaced": true});
            AuditEvent::account(AuditKind::FactorRemoved, Some(&user.id), detail, client, now)
        });
        let replacing = old.as_ref().zip(removed.as_ref()).map(|(old, audit)| Replacing { phone_id: &old.id, session: &session, audit });
        let new = NewPairedPhone {
            user_id: &user.id,
            passkey: &passkey,
            attestation: Some(&attestation),
            device_hash: &device.hash(),
            now,
            replacing,
        };
        match self.store.pair_phone(new, FactorNotice { audit: &audit, sms: &sms }).await? {
            Pairing::Paired(_) => {}
            Pairing::AlreadyPaired => return Err(already_paired()),
            Pairing::CredentialInUse => {
                return Err(Error::Conflict { code: code::CREDENTIAL_IN_USE, message: "This passkey belongs to an account already" })
            }
        }
        self.deliver(&sms).await;
        Ok(device)
    }

    /// The paired phone whose device credential this is (the cookie's
    /// text); [`Error::PhoneNotPaired`] if none is, or no longer.
    pub async fn phone_of_device(&self, credential: Option<&str>) -> Result<PairedPhone> {
        let secret = credential.and_then(|text| Secret::parse(text).ok()).ok_or(Error::PhoneNotPaired)?;
        self.store.paired_phone_by_device(&secret.hash()).await?.ok_or(Error::PhoneNotPaired)
    }

    /// Unpairs the user's phone from the account area.
    pub async fn unpair_from_account(&self, current: &Current, client: &ClientInfo) -> Result<()> {
        let phone = self.store.paired_phone_of_user(&current.user.id).await?.ok_or(Error::NotFound("No paired phone"))?;
        self.unpair(&current.user, &phone, UnpairedBy::User, client).await
    }

    /// Unpairs the phone from the phone itself.
    pub async fn unpair_from_phone(&self, phone: &PairedPhone, client: &ClientInfo) -> Result<()> {
        let user = self.store.user(&phone.user_id).await?.ok_or(Error::PhoneNotPaired)?;
        self.unpair(&user, phone, UnpairedBy::Phone, client).await
    }

    /// Ends `phone`; `by` who, and for an admin's reset, which admin.
    pub(super) async fn unpair(&self, user: &UserRecord, phone: &PairedPhone, by: UnpairedBy, client: &ClientInfo) -> Result<()> {
        let now = self.clock.now();
        let credential_id = base64_url(phone.passkey.passkey.cred_id().as_ref());
        let admin = match &by {
            UnpairedBy::Admin(admin) => Some(admin.as_str()),
            UnpairedBy::User | UnpairedBy::Phone => None,
        };
        let detail = json!({"factor": "paired_phone", "credential_id": credential_id, "by": by.as_str(), "by_admin": admin.is_some(), "admin": admin});
        let audit = AuditEvent::account(AuditKind::FactorRemoved, Some(&user.id), detail, client, now);
        let sms =
            OutgoingSms::factor_removed(user.phone.clone(), WHAT, admin.is_some(), &self.security_page, now, self.outbox_copy.clone());
        if !self.store.unpair_phone(&phone.id, &by, now, FactorNotice { audit: &audit, sms: &sms }).await? {
            // Ended meanwhile (by the phone, the user or an admin).
            return Err(Error::PhoneNotPaired);
        }
        self.deliver(&sms).await;
        Ok(())
    }
}

fn already_paired() -> Error {
    Error::Conflict {
        code: code::PHONE_ALREADY_PAIRED,
        message: "A phone is paired with your account already: confirm the new one on it, or unpair it first (from that phone, or from your security page)",
    }
}
