//! The approval page's calls to the server, and to the browser's WebAuthn.

use shared::{error_code, ApprovalOutcome, ApprovalView, ErrorBody};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::webauthn;
use crate::wire::FromJson;

/// What went wrong, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The link is unknown.
    NotFound,
    /// The server refused, with its error code and message.
    Refused(ErrorBody),
    /// The browser could not reach the server or the authenticator.
    Failed(String),
}

impl ApiError {
    pub fn message(&self) -> String {
        match self {
            ApiError::NotFound => "This approval link is not valid.".into(),
            ApiError::Refused(body) => body.message.clone(),
            ApiError::Failed(text) => text.clone(),
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Refused(body) => Some(&body.code),
            _ => None,
        }
    }
}

fn base(link: &str) -> String {
    format!("/api/approvals/{link}")
}

/// `GET /api/approvals/{link}`. The page's answer asked the browser to
/// preload this very request (same URL, mode and credentials): this fetch
/// takes the preloaded answer instead of starting over.
pub async fn approval(link: &str) -> Result<ApprovalView, ApiError> {
    decode(call("GET", &base(link), None).await?)
}

pub async fn deny(link: &str) -> Result<ApprovalOutcome, ApiError> {
    decode(call("POST", &format!("{}/deny", base(link)), None).await?)
}

/// Creates the user's first passkey; the link alone is one factor, so the
/// server asks the account's password first. The answer is `waiting`: a
/// creation signs nothing of the approval, so the user then approves with
/// the new passkey ([`authenticate_and_approve`]).
pub async fn create_passkey(link: &str, password: &str) -> Result<ApprovalOutcome, ApiError> {
    let start = webauthn::password_body(password).map_err(unexpected)?;
    let challenge = call("POST", &format!("{}/passkey/register/start", base(link)), Some(start)).await?;
    let options = webauthn::creation_options(&challenge).map_err(unexpected)?;
    let promise = credentials()?.create_with_options(&options).map_err(browser_error)?;
    let credential = credential_of(JsFuture::from(promise).await.map_err(browser_error)?)?;
    let body = webauthn::registration(&credential).map_err(unexpected)?;
    decode(call("POST", &format!("{}/passkey/register/finish", base(link)), Some(body)).await?)
}

/// Approves with an existing passkey.
pub async fn authenticate_and_approve(link: &str) -> Result<ApprovalOutcome, ApiError> {
    let challenge = call("POST", &format!("{}/passkey/authenticate/start", base(link)), None).await?;
    let options = webauthn::request_options(&challenge).map_err(unexpected)?;
    let promise = credentials()?.get_with_options(&options).map_err(browser_error)?;
    let credential = credential_of(JsFuture::from(promise).await.map_err(browser_error)?)?;
    let body = webauthn::assertion(&credential).map_err(unexpected)?;
    decode(call("POST", &format!("{}/passkey/authenticate/finish", base(link)), Some(body)).await?)
}

fn unexpected(_: JsValue) -> ApiError {
    ApiError::Failed("Passgate sent an unexpected answer. Please try again.".into())
}

/// A JSON value of the server as one of `shared`'s types.
fn decode<T: FromJson>(value: JsValue) -> Result<T, ApiError> {
    T::from_json(&value).ok_or_else(|| unexpected(value))
}

fn credentials() -> Result<web_sys::CredentialsContainer, ApiError> {
    let window = web_sys::window().ok_or_else(|| ApiError::Failed("No browser window".into()))?;
    Ok(window.navigator().credentials())
}

fn credential_of(value: JsValue) -> Result<web_sys::PublicKeyCredential, ApiError> {
    value
        .dyn_into::<web_sys::PublicKeyCredential>()
        .map_err(|_| ApiError::Failed("Your browser returned no passkey. Please try again.".into()))
}

/// The browser's WebAuthn errors, in words for the user.
fn browser_error(error: JsValue) -> ApiError {
    let name = error.dyn_ref::<web_sys::DomException>().map(|e| e.name()).unwrap_or_default();
    let text = match name.as_str() {
        "NotAllowedError" => "The passkey request was cancelled or timed out. You can try again.",
        "InvalidStateError" => "This device already holds a passkey for this account.",
        "NotSupportedError" => "This browser cannot use passkeys.",
        "SecurityError" => "This page's address is not allowed to use passkeys.",
        "AbortError" => "The passkey request was interrupted. You can try again.",
        _ => "The passkey request failed. You can try again.",
    };
    ApiError::Failed(text.into())
}

/// One call to the server: its JSON answer, parsed by the browser.
async fn call(method: &str, url: &str, body: Option<String>) -> Result<JsValue, ApiError> {
    let failed = |_| ApiError::Failed("Passgate could not be reached. Check your connection and try again.".into());
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(body) = &body {
        let headers = web_sys::Headers::new().map_err(failed)?;
        headers.set("content-type", "application/json").map_err(failed)?;
        init.set_headers(&headers);
        init.set_body(&JsValue::from_str(body));
    }
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(failed)?;
    let window = web_sys::window().ok_or_else(|| ApiError::Failed("No browser window".into()))?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_request(&request)).await.map_err(failed)?.dyn_into().map_err(failed)?;
    let json = match response.json() {
        Ok(promise) => JsFuture::from(promise).await.ok(),
        Err(_) => None,
    };
    if response.ok() {
        return json.ok_or_else(|| unexpected(JsValue::NULL));
    }
    match json.as_ref().and_then(ErrorBody::from_json) {
        Some(body) if body.code == error_code::NOT_FOUND => Err(ApiError::NotFound),
        Some(body) => Err(ApiError::Refused(body)),
        _ => Err(ApiError::Failed(format!("Passgate answered {}. Please try again.", response.status()))),
    }
}
