//! Wire types of Passgate: the bodies of the partner API and of the approval
//! page's JSON endpoints. Serde only, so that the same definitions compile for
//! the server and for the browser (wasm32).

pub mod audit_kind;
pub mod error_code;

use serde::{Deserialize, Serialize};

/// Every error body of the API: a stable machine-readable `code` (see
/// [`error_code`]), a human message, and for validation errors the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    #[cfg_attr(feature = "openapi", schema(schema_with = error_code::schema::any))]
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `step_up_required`: what the user proves again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_up: Option<StepUp>,
}

/// What a browser session must prove again before it binds a factor (a
/// passkey, an authenticator app): two factors within the last 5 minutes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StepUp {
    /// Nothing more to prove: binding is open for the rest of the 5 minutes.
    pub done: bool,
    /// The password is due (with a code; a passkey alone proves both).
    pub password: bool,
    /// How possession can be proven, if it is due: `passkey` (alone, it
    /// proves both factors), `totp` (a code of the authenticator app),
    /// `sms` (a code sent to the registered phone, for users with no
    /// second factor). Empty when possession is not due.
    pub ways: Vec<String>,
}

/// `POST /api/account/step-up`: the proofs the page collected; each one
/// given is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpProof {
    #[serde(default)]
    pub password: Option<String>,
    /// A code of the authenticator app, or the one sent by SMS.
    #[serde(default)]
    pub code: Option<String>,
    /// The code is the one sent by SMS, from a user who lost their
    /// authenticator app and replaces it (`?for=replace_app`).
    #[serde(default)]
    pub by_sms: bool,
}

/// The body of a `428 Precondition Required` answer.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaRequiredBody {
    #[cfg_attr(feature = "openapi", schema(schema_with = error_code::schema::sca_needed))]
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sca_session_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
}

/// What polling an SCA session tells the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ScaResult {
    Waiting,
    Allow,
    Deny,
}

/// `GET /v2/sca_sessions/{token}` and `GET /v2/mocked_sca_sessions/{token}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScaSessionBody {
    pub result: ScaResult,
    /// RFC 3339 time at which the session was denied or ran out.
    pub canceled_at: Option<String>,
}

/// `{"message":"Success"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageBody {
    pub message: String,
}

/// A payee as the partner sends it. Unknown fields are refused: what the
/// user approves must be all that the action does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BeneficiaryInput {
    pub name: String,
    pub iban: String,
}

/// `POST /v2/sepa/transfers` request body (unknown fields refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferRequest {
    /// Decimal string with at most two decimals, e.g. `"1200.00"`.
    pub amount: String,
    pub currency: String,
    pub beneficiary: BeneficiaryInput,
    #[serde(default)]
    pub reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transfer {
    pub id: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
    pub beneficiary: BeneficiaryInput,
    pub reference: Option<String>,
    pub created_at: String,
}

/// `201` of `POST /v2/sepa/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferCreated {
    pub transfer: Transfer,
}

/// `200` of `GET /v2/sepa/transfers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransferList {
    pub transfers: Vec<Transfer>,
}

/// `POST /v2/sepa/beneficiaries` request body (unknown fields refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BeneficiaryRequest {
    pub beneficiary: BeneficiaryInput,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Beneficiary {
    pub id: String,
    pub name: String,
    pub iban: String,
    pub created_at: String,
}

/// `201` of `POST /v2/sepa/beneficiaries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BeneficiaryCreated {
    pub beneficiary: Beneficiary,
}

/// One message of the sandbox SMS outbox (`GET /dev/sms`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmsMessage {
    pub to: String,
    pub body: String,
    pub link: Option<String>,
    pub otp: Option<String>,
    pub sent_at: String,
}

/// Where an approval stands, as the approval page sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalState {
    /// The user can still approve or deny.
    Waiting,
    Allowed,
    Denied,
    /// Approved, and the partner already ran the action.
    Used,
    Expired,
}

/// What the user is asked to approve: exactly what the approval is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionSummary {
    /// `transfer.single.create` or `beneficiary.create`.
    pub action_type: String,
    /// Formatted amount (`"1,200.00"`), absent for a beneficiary.
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub payee_name: String,
    /// IBAN grouped by four characters.
    pub iban: String,
    pub reference: Option<String>,
}

/// `GET /api/approvals/{link}`: everything the approval page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalView {
    pub partner_name: String,
    /// What the user is asked to approve: only while the approval waits
    /// (once decided, used or expired, the link shows the outcome alone).
    pub action: Option<ActionSummary>,
    pub state: ApprovalState,
    /// Seconds until the approval runs out (0 once it has).
    pub seconds_left: u64,
    /// Whether the user already has a passkey: approve with it, or create one.
    pub has_passkey: bool,
}

/// An approval waiting on the paired phone (`GET /device/api/approvals`,
/// `GET /device/api/approvals/{id}`): everything the action does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneApproval {
    /// Opaque: the id the push carried.
    pub id: String,
    pub partner_name: String,
    pub action: ActionSummary,
    /// When the partner asked (RFC 3339).
    pub requested_at: String,
    /// Seconds until it runs out.
    pub seconds_left: u64,
}

/// What the paired phone is asked to confirm for the account area
/// (`GET /device/api/confirmations`): a sign-in on another browser, or
/// pairing a new phone in its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhoneConfirmationInfo {
    pub id: String,
    /// `sign_in` or `replace_phone`.
    pub purpose: String,
    /// The asking browser ("Firefox on Linux") and its address.
    pub browser: String,
    pub ip: Option<String>,
    /// When it was asked (RFC 3339).
    pub requested_at: String,
    pub seconds_left: u64,
}

/// The account area asked the paired phone (`202`): poll the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationAsked {
    pub expires_in_secs: u64,
}

/// Where the browser session's confirmation stands: `waiting`,
/// `allowed`, `denied`, `canceled` (run out or superseded) or `used`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfirmationStatus {
    pub state: String,
}

/// `POST /api/approvals/{link}/passkey/register/start`: the first passkey
/// from a link needs the account's password too (unknown fields refused).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationStart {
    pub password: String,
}

/// `POST /api/account/sign-in` (unknown fields refused).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub email: String,
    pub password: String,
}

/// How far a browser's sign-in went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignInStage {
    /// The password was right; a second factor is due.
    SecondFactor,
    /// The company forces two-factor and the user has none yet: setting
    /// one up is all that is open.
    Enrol,
    SignedIn,
}

/// The signed-in user, as the account area shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUser {
    pub id: String,
    pub email: Option<String>,
    pub display_name: String,
    /// `member` or `admin`.
    pub role: String,
}

/// `GET /api/account/session`, and the answer of a sign-in.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSession {
    pub user: AccountUser,
    pub stage: SignInStage,
    /// Sent back as `X-CSRF-Token` with every state-changing request.
    pub csrf_token: String,
    /// The session ends after this long without a request.
    pub idle_timeout_secs: u64,
    /// Time left before it ends, were no request made.
    pub expires_in_secs: u64,
    /// What the second step accepts (`totp`, `recovery_code`, `passkey`);
    /// empty once signed in.
    pub second_factors: Vec<String>,
}

/// `POST /api/account/totp/setup`: a new authenticator app's key, for the
/// user to scan (QR code, SVG) or type (base32).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetup {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
    /// This app replaces the user's (which works until this one's first code).
    #[serde(default)]
    pub replacing: bool,
}

/// A one-time code: an authenticator app's, or a recovery code.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeInput {
    pub code: String,
    /// At the second step of a sign-in: trust this browser for 90 days
    /// (the password alone then signs in on it).
    #[serde(default)]
    pub trust_browser: bool,
}

/// `GET /api/account/trusted-browsers`: one browser the user trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedBrowserInfo {
    pub id: String,
    /// e.g. "Chrome on Android", from its user agent.
    pub name: String,
    pub trusted_at: String,
    pub last_used_at: String,
    pub expires_at: String,
}

/// `POST /api/account/totp/confirm`: the recovery codes, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
    /// Present when this set-up finished a sign-in the company's policy had
    /// held back: the new session (a new cookie came with it).
    pub session: Option<AccountSession>,
}

/// When a factor was added and last used (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorUse {
    pub added_at: String,
    pub last_used_at: Option<String>,
}

/// One push of the sandbox's push outbox (`GET /dev/push`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushMessage {
    /// The paired phone it went to.
    pub phone_id: String,
    /// The SCA session it announces (its whole payload), or
    pub session_id: Option<String>,
    /// the account area's confirmation it announces.
    pub confirmation_id: Option<String>,
    pub sent_at: String,
}

/// The paired phone (`GET /api/account/phone`, `GET /device/api/phone`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedPhoneInfo {
    /// When it was paired (RFC 3339).
    pub paired_at: String,
    /// When it last approved something (RFC 3339).
    pub last_used_at: Option<String>,
    /// Its passkey is synced by its provider (backed up).
    pub synced: bool,
    /// Approvals reach it as notifications (it has a live push
    /// subscription); off, it sees them while its app is open.
    #[serde(default)]
    pub notifications: bool,
}

/// `GET /device/api/push_key`: the key a phone subscribes to Web Push
/// with (`pushManager.subscribe({applicationServerKey})`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKey {
    /// The VAPID public key: an uncompressed P-256 point, base64url.
    pub application_server_key: String,
}

/// `PUT /device/api/push_subscription`: the browser's
/// `PushSubscription.toJSON()`, as it gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushSubscriptionJson {
    pub endpoint: String,
    /// When the push service ends it (ms since the epoch); browsers give
    /// null. Informational: a dead one is known by the 404 or 410.
    #[serde(default)]
    pub expiration_time: Option<f64>,
    pub keys: PushSubscriptionKeys,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscriptionKeys {
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// Its 16-byte authentication secret, base64url.
    pub auth: String,
}

/// A passkey as its owner and their admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: Option<String>,
    pub added_at: String,
    pub last_used_at: Option<String>,
    /// Synced by its provider (backed up), or bound to one device.
    pub synced: bool,
}

/// One user in the report "users within a company".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyUser {
    pub id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub role: String,
    pub authenticator_app: Option<FactorUse>,
    pub passkeys: Vec<PasskeyInfo>,
    /// The paired phone, if one is: when paired and last used.
    pub paired_phone: Option<FactorUse>,
}

/// `GET /api/account/company` (admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanyReport {
    pub name: String,
    /// `opt_in` or `forced`.
    pub two_factor: String,
    pub users: Vec<CompanyUser>,
}

/// `GET /api/account/security`: the user's own factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityOverview {
    /// The company's policy: `opt_in` or `forced`.
    pub two_factor: String,
    pub authenticator_app: Option<FactorUse>,
    pub recovery_codes_left: u32,
    pub passkeys: Vec<PasskeyInfo>,
}

/// `PATCH /api/account/passkeys/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasskeyRename {
    pub name: String,
}

/// One event of the activity log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityEvent {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// e.g. `account.signed_in`, `factor.added`, `session.decided`.
    pub kind: String,
    pub user_id: Option<String>,
    pub detail: serde_json::Value,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// `GET /api/account/activity`: newest first; `next_before` asks for the
/// next (older) page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityPage {
    pub events: Vec<ActivityEvent>,
    pub next_before: Option<i64>,
}

/// `PUT /api/account/company/policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// `opt_in` or `forced`.
    pub two_factor: String,
}

/// The answer of every approval-page decision (passkey finish, deny).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalOutcome {
    pub state: ApprovalState,
}

/// `GET /healthz` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthBody {
    pub status: String,
}

/// The one JSON object `passgate demo` prints. Every run sets fresh
/// passwords and tokens.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoCredentials {
    pub user_phone: String,
    pub embed_partner_token: String,
    pub partner_token: String,
    pub user_email: String,
    pub user_password: String,
    pub admin_email: String,
    pub admin_password: String,
}

/// `Debug` for the bodies that carry a secret (a session token, an
/// approval link, an access token): the secret never reaches a log line.
mod redacted {
    use std::fmt;

    const REDACTED: &str = "<redacted>";

    impl fmt::Debug for super::ScaRequiredBody {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("ScaRequiredBody")
                .field("code", &self.code)
                .field("message", &self.message)
                .field("sca_session_token", &self.sca_session_token.as_ref().map(|_| REDACTED))
                .field("action_type", &self.action_type)
                .finish()
        }
    }

    impl fmt::Debug for super::SmsMessage {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SmsMessage").field("sent_at", &self.sent_at).finish_non_exhaustive()
        }
    }

    impl fmt::Debug for super::SignIn {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SignIn").field("email", &self.email).field("password", &REDACTED).finish()
        }
    }

    impl fmt::Debug for super::AccountSession {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("AccountSession")
                .field("user", &self.user)
                .field("stage", &self.stage)
                .field("csrf_token", &REDACTED)
                .field("idle_timeout_secs", &self.idle_timeout_secs)
                .field("expires_in_secs", &self.expires_in_secs)
                .field("second_factors", &self.second_factors)
                .finish()
        }
    }

    impl fmt::Debug for super::TotpSetup {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("TotpSetup").finish_non_exhaustive()
        }
    }

    impl fmt::Debug for super::CodeInput {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("CodeInput").finish_non_exhaustive()
        }
    }

    impl fmt::Debug for super::RecoveryCodes {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RecoveryCodes").field("count", &self.recovery_codes.len()).finish()
        }
    }

    impl fmt::Debug for super::RegistrationStart {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("RegistrationStart").finish_non_exhaustive()
        }
    }

    impl fmt::Debug for super::DemoCredentials {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("DemoCredentials").finish_non_exhaustive()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sca_result_serialises_as_the_protocol_words() {
        let body = ScaSessionBody { result: ScaResult::Allow, canceled_at: None };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"result":"allow","canceled_at":null}"#);
    }

    #[test]
    fn a_428_without_token_omits_the_token_field() {
        let body =
            ScaRequiredBody { code: error_code::SCA_NOT_ENROLLED.into(), message: "m".into(), sca_session_token: None, action_type: None };
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("sca_session_token"), "{json}");
    }

    #[test]
    fn a_transfer_request_without_reference_parses() {
        let req: Result<TransferRequest, _> =
            serde_json::from_str(r#"{"amount":"1.00","currency":"EUR","beneficiary":{"name":"A","iban":"X"}}"#);
        assert_eq!(req.map(|r| r.reference).ok(), Some(None));
    }

    #[test]
    fn debug_never_prints_a_token_or_a_link() {
        let secret = "c2VjcmV0LXNlc3Npb24tdG9rZW4tdGhhdC1tdXN0LW5vdA";
        let body = ScaRequiredBody { code: "c".into(), message: "m".into(), sca_session_token: Some(secret.into()), action_type: None };
        let sms = SmsMessage {
            to: "+33600000000".into(),
            body: format!("link {secret}"),
            link: Some(secret.into()),
            otp: Some("123456".into()),
            sent_at: "t".into(),
        };
        let demo = DemoCredentials {
            user_phone: "+33600000000".into(),
            embed_partner_token: secret.into(),
            partner_token: secret.into(),
            user_email: "camille@example.com".into(),
            user_password: secret.into(),
            admin_email: "admin@example.com".into(),
            admin_password: secret.into(),
        };
        let start = RegistrationStart { password: secret.into() };
        for debug in [format!("{body:?}"), format!("{sms:?}"), format!("{demo:?}"), format!("{start:?}")] {
            assert!(!debug.contains(secret), "{debug}");
            assert!(!debug.contains("123456") && !debug.contains("+3360"), "{debug}");
        }
    }
}
