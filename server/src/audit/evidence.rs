//! What is kept of each passkey approval: what the user saw, and the
//! ceremony's signed data. Serialised once, straight to the stored JSON.

use serde::Serialize;
use shared::ActionSummary;

use super::verify::AssertionEvidence;

#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalEvidence<'a> {
    /// The first passkey, created from the link: attestation `none`, so no
    /// signature over the challenge; the browser's answer as it came.
    Registration {
        session_id: &'a str,
        partner_name: &'a str,
        summary: &'a ActionSummary,
        credential_id: &'a str,
        /// base64url.
        client_data_json: String,
        /// base64url.
        attestation_object: String,
    },
    /// An approval with a stored passkey: the assertion, re-verifiable.
    Authentication {
        session_id: &'a str,
        partner_name: &'a str,
        summary: &'a ActionSummary,
        passkey_id: &'a str,
        assertion: &'a AssertionEvidence,
    },
}

impl ApprovalEvidence<'_> {
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}
