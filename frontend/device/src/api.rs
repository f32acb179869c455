//! The calls the phone app makes: its own pairing and approvals over the
//! device credential (a cookie on `/device`), and the account area's
//! session and pairing steps while it pairs (PROTOCOL.md, "The paired
//! phone").

use passgate_ui::api::{self, remember_csrf};
use passgate_ui::Failure;
use serde::de::DeserializeOwned;
use shared::{
    error_code, AccountSession, ApprovalOutcome, ConfirmationAsked, ConfirmationStatus, PairedPhoneInfo, PhoneApproval,
    PhoneConfirmationInfo, StepUp, StepUpProof,
};
use wasm_bindgen::JsValue;

const PAIR: &str = "for=pair_phone";

async fn read<T: DeserializeOwned>(method: &str, url: &str, body: Option<String>) -> Result<T, Failure> {
    let text = api::send(method, url, body).await?;
    serde_json::from_str(&text).map_err(|_| Failure::unexpected())
}

/// This phone's pairing; `None` when it is not paired (or no longer).
pub async fn this_phone() -> Result<Option<PairedPhoneInfo>, Failure> {
    match read("GET", "/device/api/phone", None).await {
        Ok(phone) => Ok(Some(phone)),
        Err(failure) if failure.code == error_code::PHONE_NOT_PAIRED => Ok(None),
        Err(failure) => Err(failure),
    }
}

pub async fn unpair() -> Result<(), Failure> {
    api::send("DELETE", "/device/api/phone", None).await.map(drop)
}

pub async fn approval(id: &str) -> Result<PhoneApproval, Failure> {
    read("GET", &format!("/device/api/approvals/{}", encode(id)), None).await
}

/// Approves with the phone's passkey: the server's challenge, the
/// browser's assertion (user verification), the server's verdict.
pub async fn approve(id: &str) -> Result<ApprovalOutcome, Failure> {
    signed(&format!("/device/api/approvals/{}", encode(id))).await
}

/// `{base}/start`'s challenge signed by the phone's passkey, and
/// `{base}/finish`'s answer to the assertion.
async fn signed<T: DeserializeOwned>(base: &str) -> Result<T, Failure> {
    let challenge = api::send_json("POST", &format!("{base}/start"), None).await?;
    let assertion = passgate_ui::webauthn::authenticate(&challenge, None).await?;
    read("POST", &format!("{base}/finish"), Some(assertion)).await
}

/// Denies; `report`: "this wasn't me" (denies, and tells the bank).
pub async fn deny(id: &str, report: bool) -> Result<ApprovalOutcome, Failure> {
    let verb = if report { "report" } else { "deny" };
    read("POST", &format!("/device/api/approvals/{}/{verb}", encode(id)), None).await
}

/// The key to subscribe with; `None` when the server sends no Web Push.
pub async fn push_key() -> Result<Option<String>, Failure> {
    #[derive(serde::Deserialize)]
    struct PushKey {
        application_server_key: String,
    }
    match read::<PushKey>("GET", "/device/api/push_key", None).await {
        Ok(key) => Ok(Some(key.application_server_key)),
        Err(failure) if failure.code == error_code::NOT_FOUND => Ok(None),
        Err(failure) => Err(failure),
    }
}

/// Keeps the browser's subscription (`PushSubscription.toJSON()`).
pub async fn subscribe(subscription: &JsValue) -> Result<(), Failure> {
    let json = js_sys::JSON::stringify(subscription).ok().and_then(|s| s.as_string()).ok_or_else(Failure::unexpected)?;
    api::send("PUT", "/device/api/push_subscription", Some(json)).await.map(drop)
}

pub async fn unsubscribe() -> Result<(), Failure> {
    api::send("DELETE", "/device/api/push_subscription", None).await.map(drop)
}

/// The account area's session in this browser, if signed in (its CSRF
/// token kept for the pairing's requests).
pub async fn session() -> Result<Option<AccountSession>, Failure> {
    match read::<AccountSession>("GET", "/api/account/session", None).await {
        Ok(session) => {
            remember_csrf(Some(session.csrf_token.clone()));
            Ok(Some(session))
        }
        Err(failure) if failure.signed_out() => Ok(None),
        Err(failure) => Err(failure),
    }
}

/// What the pairing still needs proven (the password, a code by SMS).
pub async fn pairing_proofs() -> Result<StepUp, Failure> {
    read("GET", &format!("/api/account/step-up?{PAIR}"), None).await
}

/// Sends the pairing's code by SMS to the account's phone number.
pub async fn send_code() -> Result<(), Failure> {
    api::send("POST", &format!("/api/account/step-up/sms?{PAIR}"), None).await.map(drop)
}

pub async fn prove(proof: &StepUpProof) -> Result<StepUp, Failure> {
    let body = serde_json::to_string(proof).map_err(|_| Failure::unexpected())?;
    read("POST", &format!("/api/account/step-up?{PAIR}"), Some(body)).await
}

/// Creates the phone's passkey; the server then sets the device credential.
pub async fn pair() -> Result<PairedPhoneInfo, Failure> {
    let challenge = api::send_json("POST", "/api/account/phone/start", None).await?;
    let credential = passgate_ui::webauthn::register(&challenge).await?;
    read("POST", "/api/account/phone/finish", Some(credential)).await
}

/// Asks the paired phone to allow this one in its place (`202`).
pub async fn ask_replacement() -> Result<ConfirmationAsked, Failure> {
    read("POST", "/api/account/phone/replace", None).await
}

/// Whether the paired phone answered: `waiting`, `allowed`, `denied`,
/// `canceled` or `used`.
pub async fn replacement() -> Result<ConfirmationStatus, Failure> {
    read("GET", "/api/account/phone/replace", None).await
}

/// What the account area asks this phone to confirm, newest first.
pub async fn confirmations() -> Result<Vec<PhoneConfirmationInfo>, Failure> {
    read("GET", "/device/api/confirmations", None).await
}

/// Allows with the phone's passkey (user verification), or refuses.
pub async fn answer_confirmation(id: &str, allow: bool) -> Result<ConfirmationStatus, Failure> {
    let base = format!("/device/api/confirmations/{}", encode(id));
    if !allow {
        return read("POST", &format!("{base}/deny"), None).await;
    }
    signed(&base).await
}

/// An id as one path segment.
fn encode(id: &str) -> String {
    String::from(js_sys::encode_uri_component(id))
}
