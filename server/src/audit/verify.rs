//! The evidence of one passkey approval and its offline re-verification.
//!
//! [`AssertionEvidence`] keeps the bytes the browser sent (clientDataJSON,
//! authenticatorData, signature), the challenge the server issued, the
//! credential's public key and the relying party's expectations (RP ID,
//! origin). [`AssertionEvidence::verify`] checks them again, with nothing
//! but these fields: no database, no ceremony state, no clock. It follows
//! the assertion steps of WebAuthn Level 3 (§ 7.2) that do not depend on
//! state kept by the relying party (the signature counter, the allowed
//! credentials), and reports every check that fails by name.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use webauthn_rs::prelude::{COSEKey, Passkey, PublicKeyCredential};

/// authenticatorData flag: user present.
const FLAG_UP: u8 = 0x01;
/// authenticatorData flag: user verified.
const FLAG_UV: u8 = 0x04;
/// rpIdHash (32 bytes), flags (1), signCount (4).
const AUTHENTICATOR_DATA_MIN_LEN: usize = 37;

/// Base64url as browsers write it in clientDataJSON: without padding, but
/// padding is tolerated.
const CLIENT_DATA_BASE64: GeneralPurpose =
    GeneralPurpose::new(&URL_SAFE, GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent));

/// What is kept of a passkey approval, as stored and as printed. Binary
/// fields are base64url without padding, of the exact bytes received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionEvidence {
    /// The credential that answered (its raw ID).
    pub credential_id: String,
    /// The credential's COSE public key, as registered (webauthn-rs's JSON form).
    pub public_key: COSEKey,
    /// The challenge the server issued for this approval.
    pub challenge: String,
    /// `response.clientDataJSON`: the signed client data.
    pub client_data_json: String,
    /// `response.authenticatorData`.
    pub authenticator_data: String,
    /// `response.signature`, over `authenticatorData || SHA-256(clientDataJSON)`.
    pub signature: String,
    /// The relying party ID the assertion must be scoped to.
    pub rp_id: String,
    /// The origin the assertion must come from (serialised origin, e.g.
    /// `https://sca.example.com`).
    pub origin: String,
    /// The UV flag of authenticatorData when the evidence was taken; for
    /// reading only, [`AssertionEvidence::verify`] reads the flag itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_verified: Option<bool>,
}

/// Why evidence cannot be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    #[error("the assertion was made with credential {answer}, not with the passkey given ({passkey})")]
    CredentialMismatch { answer: String, passkey: String },
    #[error("the origin {0} is opaque: it cannot be compared")]
    OpaqueOrigin(String),
    #[error("the authentication state holds no readable challenge")]
    ChallengeUnreadable,
}

/// The result of [`AssertionEvidence::verify`]: `holds` when every check
/// passed; otherwise `failed` names each check that did not, in the order
/// they are made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub holds: bool,
    pub failed: Vec<Failure>,
}

/// One failed check of [`AssertionEvidence::verify`]; serialised in
/// snake_case (`"challenge_mismatch"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The signature does not verify with the public key over
    /// `authenticatorData || SHA-256(clientDataJSON)` (or one of them is
    /// not base64url).
    SignatureInvalid,
    /// clientDataJSON is not base64url of a JSON object of the expected shape.
    ClientDataUnparsable,
    /// clientDataJSON's `type` is not `webauthn.get`.
    NotAnAssertion,
    /// clientDataJSON's `challenge` is not the recorded challenge.
    ChallengeMismatch,
    /// clientDataJSON's `origin` is not the recorded origin.
    OriginMismatch,
    /// clientDataJSON's `crossOrigin` is present and not `false`.
    CrossOrigin,
    /// authenticatorData is not base64url or shorter than 37 bytes.
    AuthenticatorDataMalformed,
    /// authenticatorData's rpIdHash is not SHA-256 of the recorded RP ID.
    RpIdMismatch,
    /// authenticatorData's UP flag is not set.
    UserNotPresent,
    /// authenticatorData's UV flag is not set.
    UserNotVerified,
    /// The evidence names another session than the one it is kept for
    /// (a row copied from another session).
    SessionMismatch,
    /// The evidence carries no binding MAC (kept before it existed).
    BindingMissing,
    /// The credential registry holds no such key for the session's user:
    /// the row's key is not the one registered (the signature is then
    /// checked with the registered key, if any).
    KeyNotRegistered,
    /// The binding MAC does not cover this challenge, session, request and
    /// summary under the deployment's key (an edited or forged row).
    BindingInvalid,
}

impl Failure {
    /// A sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            Failure::SignatureInvalid => {
                "the signature does not verify with the credential's public key over authenticatorData and the clientDataJSON hash"
            }
            Failure::ClientDataUnparsable => "clientDataJSON does not parse",
            Failure::NotAnAssertion => "clientDataJSON's type is not \"webauthn.get\"",
            Failure::ChallengeMismatch => "clientDataJSON's challenge is not the challenge the server issued",
            Failure::OriginMismatch => "clientDataJSON's origin is not the expected origin",
            Failure::CrossOrigin => "clientDataJSON says the request came from a cross-origin frame",
            Failure::AuthenticatorDataMalformed => "authenticatorData is malformed",
            Failure::RpIdMismatch => "authenticatorData's rpIdHash is not the hash of the expected RP ID",
            Failure::UserNotPresent => "authenticatorData's user-present flag is not set",
            Failure::UserNotVerified => "authenticatorData's user-verified flag is not set",
            Failure::SessionMismatch => "the evidence names another session than the one it is kept for",
            Failure::BindingMissing => "the evidence carries no binding MAC",
            Failure::KeyNotRegistered => "the credential registry holds no such key for the session's user",
            Failure::BindingInvalid => "the binding MAC does not cover this challenge, session, request and summary",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// The members of clientDataJSON that are checked. A member given twice
/// makes it unparsable; unknown members are ignored.
#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    type_: Option<String>,
    challenge: Option<String>,
    origin: Option<String>,
    #[serde(rename = "crossOrigin")]
    cross_origin: Option<serde_json::Value>,
}

impl ClientData {
    fn parse(bytes: &[u8]) -> Option<ClientData> {
        serde_json::from_slice(bytes).ok()
    }

    /// Same origin: `crossOrigin` absent (as most browsers send it) or `false`.
    fn same_origin(&self) -> bool {
        matches!(self.cross_origin, None | Some(serde_json::Value::Bool(false)))
    }
}

/// True when clientDataJSON says the ceremony ran in a cross-origin frame:
/// its `crossOrigin` member is present and anything but `false`. Data that
/// does not parse is not said to be cross-origin (webauthn-rs refuses it).
pub fn client_data_cross_origin(client_data_json: &[u8]) -> bool {
    ClientData::parse(client_data_json).is_some_and(|c| !c.same_origin())
}

/// The challenge the relying party issued, from the saved authentication
/// state (webauthn-rs's JSON: `{"ast": {…, "challenge": "<base64url>"}}`);
/// only that field is read, the rest is skipped unparsed.
pub fn issued_challenge(saved_state: &str) -> Result<Vec<u8>, EvidenceError> {
    #[derive(Deserialize)]
    struct Saved {
        ast: Ast,
    }
    #[derive(Deserialize)]
    struct Ast {
        challenge: String,
    }
    let saved: Saved = serde_json::from_str(saved_state).map_err(|_| EvidenceError::ChallengeUnreadable)?;
    CLIENT_DATA_BASE64.decode(saved.ast.challenge).map_err(|_| EvidenceError::ChallengeUnreadable)
}

impl AssertionEvidence {
    /// The evidence of `answer`, made with `passkey` for `challenge` (the
    /// one issued), at `rp_id` and `origin`: taken after webauthn-rs
    /// verified the answer. Refuses an answer made with another credential.
    pub fn from_assertion(
        answer: &PublicKeyCredential,
        passkey: &Passkey,
        challenge: &[u8],
        rp_id: &str,
        origin: &Url,
    ) -> Result<Self, EvidenceError> {
        let credential_id = passkey.cred_id().as_slice();
        if answer.raw_id.as_slice() != credential_id {
            return Err(EvidenceError::CredentialMismatch {
                answer: URL_SAFE_NO_PAD.encode(&answer.raw_id),
                passkey: URL_SAFE_NO_PAD.encode(credential_id),
            });
        }
        let origin = origin.origin();
        if !origin.is_tuple() {
            return Err(EvidenceError::OpaqueOrigin(origin.ascii_serialization()));
        }
        let response = &answer.response;
        Ok(AssertionEvidence {
            credential_id: URL_SAFE_NO_PAD.encode(credential_id),
            public_key: passkey.get_public_key().clone(),
            challenge: URL_SAFE_NO_PAD.encode(challenge),
            client_data_json: URL_SAFE_NO_PAD.encode(&response.client_data_json),
            authenticator_data: URL_SAFE_NO_PAD.encode(&response.authenticator_data),
            signature: URL_SAFE_NO_PAD.encode(&response.signature),
            rp_id: rp_id.to_owned(),
            origin: origin.ascii_serialization(),
            user_verified: flags(&response.authenticator_data).map(|f| f & FLAG_UV != 0),
        })
    }

    /// Checks the evidence again, offline: the signature, then
    /// clientDataJSON (type, challenge, origin, crossOrigin), then
    /// authenticatorData (rpIdHash, UP, UV). Every check is made; each
    /// failure is named once.
    pub fn verify(&self) -> Verification {
        let mut failed = Vec::new();
        let client_data_json = decode(&self.client_data_json);
        let authenticator_data = decode(&self.authenticator_data).filter(|data| data.len() >= AUTHENTICATOR_DATA_MIN_LEN);

        if !self.signature_holds(client_data_json.as_deref()) {
            failed.push(Failure::SignatureInvalid);
        }

        match client_data_json.as_deref().and_then(ClientData::parse) {
            None => failed.push(Failure::ClientDataUnparsable),
            Some(client_data) => {
                if client_data.type_.as_deref() != Some("webauthn.get") {
                    failed.push(Failure::NotAnAssertion);
                }
                if !self.challenge_matches(client_data.challenge.as_deref()) {
                    failed.push(Failure::ChallengeMismatch);
                }
                if !self.origin_matches(client_data.origin.as_deref()) {
                    failed.push(Failure::OriginMismatch);
                }
                if !client_data.same_origin() {
                    failed.push(Failure::CrossOrigin);
                }
            }
        }

        match authenticator_data.as_deref() {
            None => failed.push(Failure::AuthenticatorDataMalformed),
            Some(data) => {
                let rp_id_hash = Sha256::digest(self.rp_id.as_bytes());
                if data.get(..32) != Some(rp_id_hash.as_slice()) {
                    failed.push(Failure::RpIdMismatch);
                }
                let flags = flags(data).unwrap_or(0);
                if flags & FLAG_UP == 0 {
                    failed.push(Failure::UserNotPresent);
                }
                if flags & FLAG_UV == 0 {
                    failed.push(Failure::UserNotVerified);
                }
            }
        }

        Verification { holds: failed.is_empty(), failed }
    }

    /// The signature over `authenticatorData || SHA-256(clientDataJSON)`.
    fn signature_holds(&self, client_data_json: Option<&[u8]>) -> bool {
        let (Some(client_data_json), Some(authenticator_data), Some(signature)) =
            (client_data_json, decode(&self.authenticator_data), decode(&self.signature))
        else {
            return false;
        };
        let mut signed = authenticator_data;
        signed.extend_from_slice(&Sha256::digest(client_data_json));
        matches!(self.public_key.verify_signature(&signature, &signed), Ok(true))
    }

    fn challenge_matches(&self, in_client_data: Option<&str>) -> bool {
        let (Some(issued), Some(answered)) = (decode(&self.challenge), in_client_data.and_then(|c| CLIENT_DATA_BASE64.decode(c).ok()))
        else {
            return false;
        };
        !issued.is_empty() && issued == answered
    }

    /// Same (tuple) origin: scheme, host and port. Browsers send the
    /// serialised origin; some clients send it as a URL (with a `/`).
    fn origin_matches(&self, in_client_data: Option<&str>) -> bool {
        let (Ok(expected), Some(Ok(answered))) = (Url::parse(&self.origin), in_client_data.map(Url::parse)) else {
            return false;
        };
        let (expected, answered) = (expected.origin(), answered.origin());
        expected.is_tuple() && expected == answered
    }
}

fn decode(base64url: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(base64url).ok()
}

/// The flags byte of authenticatorData.
fn flags(authenticator_data: &[u8]) -> Option<u8> {
    authenticator_data.get(32).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_authenticator_rs::{AuthenticatorBackendHashedClientData, WebauthnAuthenticator};
    use webauthn_rs::prelude::{PasskeyAuthentication, RequestChallengeResponse, Uuid};
    use webauthn_rs::{Webauthn, WebauthnBuilder};

    const ORIGIN: &str = "http://localhost:8080";
    const RP_ID: &str = "localhost";

    /// A relying party and a soft authenticator holding one registered passkey.
    struct Fixture {
        webauthn: Webauthn,
        authenticator: SoftPasskey,
        passkey: Passkey,
    }

    fn origin() -> Url {
        Url::parse(ORIGIN).unwrap()
    }

    fn registered() -> Fixture {
        let webauthn = WebauthnBuilder::new(RP_ID, &origin()).unwrap().rp_name("Passgate").build().unwrap();
        let mut authenticator = SoftPasskey::new(true);
        let (options, state) = webauthn.start_passkey_registration(Uuid::new_v4(), "+33612345678", "Alice", None).unwrap();
        let answer = authenticator.do_registration(origin(), options).unwrap();
        let passkey = webauthn.finish_passkey_registration(&answer, &state).unwrap();
        Fixture { webauthn, authenticator, passkey }
    }

    impl Fixture {
        fn start(&self) -> (RequestChallengeResponse, PasskeyAuthentication) {
            self.webauthn.start_passkey_authentication(std::slice::from_ref(&self.passkey)).unwrap()
        }

        /// A browser's answer at `origin`, and the challenge it answers.
        fn answer_at(&mut self, origin: &str) -> (PublicKeyCredential, Vec<u8>) {
            let (options, _) = self.start();
            let challenge = options.public_key.challenge.clone();
            let answer = self.authenticator.do_authentication(Url::parse(origin).unwrap(), options).unwrap();
            (answer, challenge)
        }

        /// An answer signed by the authenticator over `client_data` (given
        /// the challenge in base64url), with request options changed by
        /// `options` (JSON form of `publicKey`).
        fn answer_with(
            &mut self,
            client_data: impl FnOnce(&str) -> Value,
            options: impl FnOnce(&mut Value),
        ) -> (PublicKeyCredential, Vec<u8>) {
            let (request, _) = self.start();
            let challenge = request.public_key.challenge.clone();
            let client_data_json = serde_json::to_vec(&client_data(&URL_SAFE_NO_PAD.encode(&challenge))).unwrap();
            self.sign(client_data_json, request, options, challenge)
        }

        fn sign(
            &mut self,
            client_data_json: Vec<u8>,
            request: RequestChallengeResponse,
            options: impl FnOnce(&mut Value),
            challenge: Vec<u8>,
        ) -> (PublicKeyCredential, Vec<u8>) {
            let mut public_key = serde_json::to_value(request.public_key).unwrap();
            options(&mut public_key);
            let public_key = serde_json::from_value(public_key).unwrap();
            let hash = Sha256::digest(&client_data_json).to_vec();
            let mut answer = AuthenticatorBackendHashedClientData::perform_auth(&mut self.authenticator, hash, public_key, 60_000).unwrap();
            answer.response.client_data_json = client_data_json;
            (answer, challenge)
        }

        fn evidence(&self, answer: &PublicKeyCredential, challenge: &[u8]) -> AssertionEvidence {
            AssertionEvidence::from_assertion(answer, &self.passkey, challenge, RP_ID, &origin()).unwrap()
        }
    }

    /// The evidence of a genuine approval, verified by webauthn-rs first.
    fn genuine() -> (Fixture, AssertionEvidence) {
        let mut fixture = registered();
        let (options, state) = fixture.start();
        let challenge = options.public_key.challenge.clone();
        let saved = serde_json::to_string(&state).unwrap();
        let answer = fixture.authenticator.do_authentication(origin(), options).unwrap();
        let result = fixture.webauthn.finish_passkey_authentication(&answer, &state).unwrap();
        assert!(result.user_verified());
        assert_eq!(issued_challenge(&saved).unwrap(), challenge);
        let evidence = fixture.evidence(&answer, &challenge);
        (fixture, evidence)
    }

    fn failed(evidence: &AssertionEvidence) -> Vec<Failure> {
        let verification = evidence.verify();
        assert_eq!(verification.holds, verification.failed.is_empty());
        verification.failed
    }

    fn get_client_data(challenge: &str) -> Value {
        json!({"type": "webauthn.get", "challenge": challenge, "origin": ORIGIN, "crossOrigin": false})
    }

    fn bytes(base64url: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(base64url).unwrap()
    }

    fn flip_byte(base64url: &mut String, index: impl FnOnce(usize) -> usize, mask: u8) {
        let mut data = bytes(base64url);
        let i = index(data.len());
        data[i] ^= mask;
        *base64url = URL_SAFE_NO_PAD.encode(data);
    }

    #[test]
    fn a_genuine_assertion_verifies() {
        let (fixture, evidence) = genuine();
        assert_eq!(evidence.verify(), Verification { holds: true, failed: vec![] });
        assert_eq!(evidence.user_verified, Some(true));
        assert_eq!(evidence.origin, ORIGIN);
        assert_eq!(bytes(&evidence.credential_id), fixture.passkey.cred_id().as_slice());
        assert_eq!(&evidence.public_key, fixture.passkey.get_public_key());
    }

    #[test]
    fn client_data_written_as_the_browser_does_verifies() {
        // Browsers send the origin without a trailing slash and
        // `crossOrigin: false`; the soft authenticator does neither.
        let mut fixture = registered();
        let (answer, challenge) = fixture.answer_with(get_client_data, |_| {});
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![]);
    }

    #[test]
    fn a_changed_signature_byte_fails() {
        let (_, mut evidence) = genuine();
        flip_byte(&mut evidence.signature, |len| len - 1, 0x01);
        assert_eq!(failed(&evidence), vec![Failure::SignatureInvalid]);
    }

    #[test]
    fn a_changed_sign_count_fails_the_signature() {
        let (_, mut evidence) = genuine();
        flip_byte(&mut evidence.authenticator_data, |_| 36, 0x80);
        assert_eq!(failed(&evidence), vec![Failure::SignatureInvalid]);
    }

    #[test]
    fn client_data_changed_by_one_byte_fails_the_signature() {
        // Still valid JSON with the same members: only the hash tells.
        let (_, mut evidence) = genuine();
        let mut client_data = bytes(&evidence.client_data_json);
        client_data.push(b' ');
        evidence.client_data_json = URL_SAFE_NO_PAD.encode(client_data);
        assert_eq!(failed(&evidence), vec![Failure::SignatureInvalid]);
    }

    #[test]
    fn another_credentials_public_key_fails_the_signature() {
        let (_, mut evidence) = genuine();
        evidence.public_key = registered().passkey.get_public_key().clone();
        assert_eq!(failed(&evidence), vec![Failure::SignatureInvalid]);
    }

    #[test]
    fn another_challenge_fails() {
        // A genuine answer to a later challenge, recorded against the first.
        let mut fixture = registered();
        let (first, _) = fixture.start();
        let (answer, _) = fixture.answer_at(ORIGIN);
        let evidence = fixture.evidence(&answer, &first.public_key.challenge);
        assert_eq!(failed(&evidence), vec![Failure::ChallengeMismatch]);
    }

    #[test]
    fn a_recorded_challenge_changed_by_one_byte_fails() {
        let (_, mut evidence) = genuine();
        flip_byte(&mut evidence.challenge, |_| 0, 0x01);
        assert_eq!(failed(&evidence), vec![Failure::ChallengeMismatch]);
    }

    #[test]
    fn another_origin_fails() {
        // Signed by the authenticator for the right RP ID, from another origin.
        let mut fixture = registered();
        let (answer, challenge) = fixture.answer_at("http://localhost:9090");
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![Failure::OriginMismatch]);

        let (_, mut evidence) = genuine();
        evidence.origin = "https://localhost:8080".into();
        assert_eq!(failed(&evidence), vec![Failure::OriginMismatch]);
    }

    #[test]
    fn a_cross_origin_assertion_fails() {
        let mut fixture = registered();
        let (answer, challenge) = fixture.answer_with(
            |challenge| json!({"type": "webauthn.get", "challenge": challenge, "origin": ORIGIN, "crossOrigin": true}),
            |_| {},
        );
        assert!(client_data_cross_origin(&answer.response.client_data_json));
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![Failure::CrossOrigin]);
    }

    #[test]
    fn a_registration_client_data_fails() {
        let mut fixture = registered();
        let (answer, challenge) =
            fixture.answer_with(|challenge| json!({"type": "webauthn.create", "challenge": challenge, "origin": ORIGIN}), |_| {});
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![Failure::NotAnAssertion]);
    }

    #[test]
    fn client_data_that_is_not_json_fails() {
        let mut fixture = registered();
        let (request, _) = fixture.start();
        let challenge = request.public_key.challenge.clone();
        let (answer, challenge) = fixture.sign(b"webauthn.get".to_vec(), request, |_| {}, challenge);
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![Failure::ClientDataUnparsable]);
    }

    #[test]
    fn client_data_with_a_repeated_member_fails() {
        let mut fixture = registered();
        let (request, _) = fixture.start();
        let challenge = request.public_key.challenge.clone();
        let client_data = format!(
            r#"{{"type":"webauthn.get","challenge":"{}","origin":"{ORIGIN}","crossOrigin":true,"crossOrigin":false}}"#,
            URL_SAFE_NO_PAD.encode(&challenge)
        );
        let (answer, challenge) = fixture.sign(client_data.into_bytes(), request, |_| {}, challenge);
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![Failure::ClientDataUnparsable]);
    }

    #[test]
    fn another_rp_id_fails() {
        // Signed for another RP ID's hash.
        let mut fixture = registered();
        let (answer, challenge) = fixture.answer_with(get_client_data, |options| options["rpId"] = json!("example.com"));
        assert_eq!(failed(&fixture.evidence(&answer, &challenge)), vec![Failure::RpIdMismatch]);

        let (_, mut evidence) = genuine();
        evidence.rp_id = "example.com".into();
        assert_eq!(failed(&evidence), vec![Failure::RpIdMismatch]);
    }

    #[test]
    fn authenticator_data_without_uv_fails() {
        // Genuinely signed, the user present but not verified.
        let mut fixture = registered();
        let (answer, challenge) = fixture.answer_with(get_client_data, |options| options["userVerification"] = json!("discouraged"));
        let evidence = fixture.evidence(&answer, &challenge);
        assert_eq!(evidence.user_verified, Some(false));
        assert_eq!(failed(&evidence), vec![Failure::UserNotVerified]);
    }

    #[test]
    fn authenticator_data_without_up_fails() {
        // The soft authenticator always sets UP: clear it, which breaks the
        // signature too.
        let (_, mut evidence) = genuine();
        flip_byte(&mut evidence.authenticator_data, |_| 32, FLAG_UP);
        assert_eq!(failed(&evidence), vec![Failure::SignatureInvalid, Failure::UserNotPresent]);
    }

    #[test]
    fn truncated_authenticator_data_fails() {
        let (_, mut evidence) = genuine();
        let data = bytes(&evidence.authenticator_data);
        evidence.authenticator_data = URL_SAFE_NO_PAD.encode(&data[..36]);
        assert_eq!(failed(&evidence), vec![Failure::SignatureInvalid, Failure::AuthenticatorDataMalformed]);
    }

    #[test]
    fn fields_that_are_not_base64url_fail_their_checks() {
        let (_, genuine) = genuine();
        let broken = |change: fn(&mut AssertionEvidence)| {
            let mut evidence = genuine.clone();
            change(&mut evidence);
            failed(&evidence)
        };
        assert_eq!(broken(|e| e.signature = "*".into()), vec![Failure::SignatureInvalid]);
        assert_eq!(broken(|e| e.challenge = "*".into()), vec![Failure::ChallengeMismatch]);
        assert_eq!(broken(|e| e.client_data_json = "*".into()), vec![Failure::SignatureInvalid, Failure::ClientDataUnparsable]);
        assert_eq!(broken(|e| e.authenticator_data = "*".into()), vec![Failure::SignatureInvalid, Failure::AuthenticatorDataMalformed]);
        assert_eq!(broken(|e| e.origin = "localhost".into()), vec![Failure::OriginMismatch]);
    }

    #[test]
    fn evidence_round_trips_through_json() {
        let (fixture, evidence) = genuine();
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(json["public_key"], serde_json::to_value(fixture.passkey.get_public_key()).unwrap());
        for field in ["credential_id", "challenge", "client_data_json", "authenticator_data", "signature"] {
            let text = json[field].as_str().unwrap();
            assert!(!text.contains('=') && !text.contains('+') && !text.contains('/'), "{field}: {text}");
        }
        assert_eq!(json["rp_id"], RP_ID);
        assert_eq!(json["origin"], ORIGIN);
        assert_eq!(json["user_verified"], true);

        let text = serde_json::to_string(&evidence).unwrap();
        let back: AssertionEvidence = serde_json::from_str(&text).unwrap();
        assert_eq!(back, evidence);
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert!(back.verify().holds);

        let mut without_flag = json;
        without_flag.as_object_mut().unwrap().remove("user_verified");
        let back: AssertionEvidence = serde_json::from_value(without_flag).unwrap();
        assert_eq!(back.user_verified, None);
        assert!(back.verify().holds);
    }

    #[test]
    fn a_verification_prints_its_failed_checks_by_name() {
        let (_, mut evidence) = genuine();
        assert_eq!(serde_json::to_value(evidence.verify()).unwrap(), json!({"holds": true, "failed": []}));
        evidence.origin = "https://example.com".into();
        evidence.rp_id = "example.com".into();
        assert_eq!(
            serde_json::to_value(evidence.verify()).unwrap(),
            json!({"holds": false, "failed": ["origin_mismatch", "rp_id_mismatch"]})
        );
        assert_eq!(Failure::OriginMismatch.to_string(), "clientDataJSON's origin is not the expected origin");
    }

    #[test]
    fn evidence_of_another_passkeys_answer_is_refused() {
        let mut fixture = registered();
        let (answer, challenge) = fixture.answer_at(ORIGIN);
        let other = registered().passkey;
        let refused = AssertionEvidence::from_assertion(&answer, &other, &challenge, RP_ID, &origin());
        assert!(matches!(refused, Err(EvidenceError::CredentialMismatch { .. })), "{refused:?}");
    }

    #[test]
    fn client_data_says_cross_origin_only_when_crossorigin_is_not_false() {
        let says = |value: Value| client_data_cross_origin(&serde_json::to_vec(&value).unwrap());
        let base = json!({"type": "webauthn.get", "challenge": "AAAA", "origin": ORIGIN});
        assert!(!says(base.clone()));
        let with = |cross: Value| {
            let mut data = base.clone();
            data["crossOrigin"] = cross;
            data
        };
        assert!(!says(with(json!(false))));
        assert!(says(with(json!(true))));
        assert!(says(with(json!("true"))));
        assert!(says(with(json!(1))));
        assert!(!client_data_cross_origin(b"not json"));
        let mut fixture = registered();
        let (answer, _) = fixture.answer_at(ORIGIN);
        assert!(!client_data_cross_origin(&answer.response.client_data_json));
    }

    #[test]
    fn the_issued_challenge_is_read_from_the_saved_state_not_the_answer() {
        let fixture = registered();
        let (options, state) = fixture.start();
        let saved = serde_json::to_string(&state).unwrap();
        assert_eq!(issued_challenge(&saved).unwrap(), options.public_key.challenge.to_vec());
        assert!(issued_challenge("{}").is_err());
        assert!(issued_challenge(r#"{"ast": {"challenge": "not base64url!"}}"#).is_err());
    }
}
