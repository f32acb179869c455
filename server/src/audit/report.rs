//! `passgate evidence <session>`: what the database proves about one SCA
//! session's decision. Prints the kept evidence (what the user saw, the
//! challenge, the signed data, the public key) with the session's audit
//! trail, and re-verifies a passkey assertion offline, without trusting
//! anything but the stored bytes and the public key.

use serde::Serialize;
use serde_json::Value;

use super::verify::{AssertionEvidence, Verification};
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
    /// The first passkey was created from the link (attestation `none`):
    /// there is no signature over the challenge to verify; the kept
    /// clientDataJSON and attestation object are shown as they came.
    Registration,
    /// No evidence is kept for this session (not approved with a passkey,
    /// past retention, or unknown).
    NoEvidence,
    /// The evidence is kept but does not parse.
    Unreadable { reason: String },
}

impl EvidenceReport {
    /// Whether the evidence stands: a verified assertion that holds, or a
    /// registration (nothing to verify).
    pub fn holds(&self) -> bool {
        match &self.verification {
            Check::Verified(v) => v.holds,
            Check::Registration => true,
            Check::NoEvidence | Check::Unreadable { .. } => false,
        }
    }
}

pub async fn report(store: &Store, session_id: &str) -> anyhow::Result<EvidenceReport> {
    let audit = store.audit_of_session(session_id).await?;
    let evidence = store.evidence_of_session(session_id).await?.map(|json| serde_json::from_str::<Value>(&json)).transpose()?;
    let verification = match &evidence {
        None => Check::NoEvidence,
        Some(kept) => check(kept),
    };
    Ok(EvidenceReport { session_id: session_id.to_owned(), evidence, verification, audit })
}

fn check(kept: &Value) -> Check {
    match kept["kind"].as_str() {
        Some("registration") => Check::Registration,
        Some("authentication") => match serde_json::from_value::<AssertionEvidence>(kept["assertion"].clone()) {
            Ok(assertion) => Check::Verified(assertion.verify()),
            Err(e) => Check::Unreadable { reason: e.to_string() },
        },
        _ => Check::Unreadable { reason: "unknown evidence kind".into() },
    }
}
