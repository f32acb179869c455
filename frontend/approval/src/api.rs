//! The approval page's calls to the server, and to the browser's WebAuthn.

use passgate_ui::wire::FromJson;
use passgate_ui::{api, webauthn, Failure};
use shared::{ApprovalOutcome, ApprovalView};
use wasm_bindgen::JsValue;

fn base(link: &str) -> String {
    format!("/api/approvals/{link}")
}

/// `GET /api/approvals/{link}`. The page's answer asked the browser to
/// preload this very request (same URL, mode and credentials): this fetch
/// takes the preloaded answer instead of starting over.
pub async fn approval(link: &str) -> Result<ApprovalView, Failure> {
    decode(api::send_json("GET", &base(link), None).await?)
}

pub async fn deny(link: &str) -> Result<ApprovalOutcome, Failure> {
    decode(api::send_json("POST", &format!("{}/deny", base(link)), None).await?)
}

/// Creates the user's first passkey; the link alone is one factor, so the
/// server asks the account's password first. The answer is `waiting`: a
/// creation signs nothing of the approval, so the user then approves with
/// the new passkey ([`authenticate_and_approve`]).
pub async fn create_passkey(link: &str, password: &str) -> Result<ApprovalOutcome, Failure> {
    let start = password_body(password).ok_or_else(Failure::unexpected)?;
    let challenge = api::send_json("POST", &format!("{}/passkey/register/start", base(link)), Some(start)).await?;
    let body = webauthn::register(&challenge).await?;
    decode(api::send_json("POST", &format!("{}/passkey/register/finish", base(link)), Some(body)).await?)
}

/// Approves with an existing passkey.
pub async fn authenticate_and_approve(link: &str) -> Result<ApprovalOutcome, Failure> {
    let challenge = api::send_json("POST", &format!("{}/passkey/authenticate/start", base(link)), None).await?;
    let body = webauthn::authenticate(&challenge, None).await?;
    decode(api::send_json("POST", &format!("{}/passkey/authenticate/finish", base(link)), Some(body)).await?)
}

/// A JSON value of the server as one of `shared`'s types.
fn decode<T: FromJson>(value: JsValue) -> Result<T, Failure> {
    T::from_json(&value).ok_or_else(Failure::unexpected)
}

/// `{"password": …}`: the password step of a first passkey, escaped by
/// the browser's own JSON.
fn password_body(password: &str) -> Option<String> {
    let json = js_sys::Object::new();
    js_sys::Reflect::set(&json, &"password".into(), &password.into()).ok()?;
    js_sys::JSON::stringify(&json).ok()?.as_string()
}
