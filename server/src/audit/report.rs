//! `passgate evidence <session>`: what the database proves about one SCA
//! session's decision. Prints the kept evidence (what the user saw, the
//! challenge, the signed data, the public key) with the session's audit
//! trail, and re-verifies a passkey assertion offline, without trusting
//! anything but the stored bytes and the public key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use webauthn_rs::prelude::COSEKey;

use super::evidence::{Bound, EvidenceKey};
use super::verify::{AssertionEvidence, Failure, Verification};
use crate::store::{AuditRow, Store};

#[derive(Debug, Serialize)]
pub struct EvidenceReport {
    pub session_id: String,
    /// The approval's evidence as kept, if the session was approved with a passkey.
    pub evidence: Option<Value>,
    /// The offline check of the assertion's signature and bound data.
    pub verification: Check,
    pub audit: Vec<AuditRow>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Check {
    /// An assertion was re-verified: `holds` says whether it did.
    Verified(Verification),
    /// Nothing to verify: a session that an earlier Passgate allowed by
    /// creating the first passkey from the link (attestation `none`),
    /// which signs nothing of the approval; the kept clientDataJSON and
    /// attestation object are shown as they came. Not proof of the
    /// approval: the report does not hold. (A first passkey now approves
    /// by an assertion after its creation, verified like any other.)
    NothingToVerify,
    /// No evidence is kept for this session (not approved with a passkey,
    /// past retention, or unknown).
    NoEvidence,
    /// The evidence is kept but does not parse.
    Unreadable { reason: String },
}

impl EvidenceReport {
    /// Whether the evidence proves the approval: a verified assertion
    /// whose binding holds.
    pub fn holds(&self) -> bool {
        match &self.verification {
            Check::Verified(v) => v.holds,
            Check::NothingToVerify | Check::NoEvidence | Check::Unreadable { .. } => false,
        }
    }
}

/// `key`: the deployment's evidence key (from `PASSGATE_SECRETS_KEY`).
pub async fn report(store: &Store, session_id: &str, key: &EvidenceKey) -> anyhow::Result<EvidenceReport> {
    let audit = store.audit_of_session(session_id).await?;
    let evidence = store.evidence_of_session(session_id).await?.map(|json| serde_json::from_str::<Value>(&json)).transpose()?;
    // The session's user: whoever its events name (its opening names them).
    let user_id = audit.iter().find_map(|e| e.user_id.clone()).unwrap_or_default();
    let verification = match &evidence {
        None => Check::NoEvidence,
        Some(kept) => {
            let registered = registered_key(store, kept, &user_id).await?;
            check(kept, session_id, key, registered.as_ref())
        }
    };
    Ok(EvidenceReport { session_id: session_id.to_owned(), evidence, verification, audit })
}

/// The public key the credential registry holds for the assertion's
/// credential as bound to `user_id`; `None`: never registered to them.
pub async fn registered_key(store: &Store, kept: &Value, user_id: &str) -> anyhow::Result<Option<COSEKey>> {
    let Some(credential_id) = kept["assertion"]["credential_id"].as_str().and_then(|id| URL_SAFE_NO_PAD.decode(id).ok()) else {
        return Ok(None);
    };
    let entries = store.registry_of_credential(&credential_id).await?;
    let added = entries.iter().rev().find(|e| e.added && e.user_id == user_id).and_then(|e| e.public_key.as_deref());
    Ok(added.and_then(|json| serde_json::from_str(json).ok()))
}

/// Checks evidence `kept` for `session_id`: the evidence row of a session,
/// as `passgate evidence` reads it. An assertion is verified with the
/// `registered` key (the registry's, not the row's own).
pub fn check(kept: &Value, session_id: &str, key: &EvidenceKey, registered: Option<&COSEKey>) -> Check {
    match kept["kind"].as_str() {
        // Kept by an earlier Passgate only (see `Check::NothingToVerify`).
        Some("registration") => Check::NothingToVerify,
        Some("authentication") => match serde_json::from_value::<AssertionEvidence>(kept["assertion"].clone()) {
            Ok(mut assertion) => {
                let mut key_failures = Vec::new();
                match registered {
                    Some(registered) if *registered == assertion.public_key => {}
                    Some(registered) => {
                        key_failures.push(Failure::KeyNotRegistered);
                        assertion.public_key = registered.clone();
                    }
                    None => key_failures.push(Failure::KeyNotRegistered),
                }
                let mut verification = assertion.verify();
                verification.failed.extend(key_failures);
                verification.failed.extend(binding_failures(kept, &assertion.challenge, session_id, key));
                verification.holds = verification.failed.is_empty();
                Check::Verified(verification)
            }
            Err(e) => Check::Unreadable { reason: e.to_string() },
        },
        Some("sms_otp") => {
            let failed = binding_failures(kept, kept["code_mac"].as_str().unwrap_or_default(), session_id, key);
            Check::Verified(Verification { holds: failed.is_empty(), failed })
        }
        _ => Check::Unreadable { reason: "unknown evidence kind".into() },
    }
}

/// The checks that tie an approval to this session and what it
/// approved: the row is this session's, and the MAC over the issued
/// challenge (a passkey's; an sms-otp code's MAC), the session, the
/// request, the summary and the SMS text holds.
fn binding_failures(kept: &Value, challenge: &str, session_id: &str, key: &EvidenceKey) -> Vec<Failure> {
    let mut failed = Vec::new();
    if kept["session_id"].as_str() != Some(session_id) {
        failed.push(Failure::SessionMismatch);
    }
    let Some(mac) = kept["binding_mac"].as_str() else {
        failed.push(Failure::BindingMissing);
        return failed;
    };
    let summary = serde_json::from_value::<shared::ActionSummary>(kept["summary"].clone());
    let holds = summary.is_ok_and(|summary| {
        let bound = Bound {
            challenge,
            session_id,
            fingerprint: kept["fingerprint"].as_str().unwrap_or_default(),
            partner_name: kept["partner_name"].as_str().unwrap_or_default(),
            summary: &summary,
            shown: kept["sms_text"].as_str().unwrap_or_default(),
        };
        key.holds(&bound, mac)
    });
    if !holds {
        failed.push(Failure::BindingInvalid);
    }
    failed
}
