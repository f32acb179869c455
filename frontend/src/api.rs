//! The approval page's calls to the server, and to the browser's WebAuthn.

use serde::de::DeserializeOwned;
use shared::{error_code, ApprovalOutcome, ApprovalView, ErrorBody};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use webauthn_rs_proto::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

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

pub async fn approval(link: &str) -> Result<ApprovalView, ApiError> {
    call("GET", &base(link), None).await
}

pub async fn deny(link: &str) -> Result<ApprovalOutcome, ApiError> {
    call("POST", &format!("{}/deny", base(link)), None).await
}

/// Creates the user's first passkey and approves with it.
pub async fn register_and_approve(link: &str) -> Result<ApprovalOutcome, ApiError> {
    let challenge: CreationChallengeResponse = call("POST", &format!("{}/passkey/register/start", base(link)), None).await?;
    let options: web_sys::CredentialCreationOptions = challenge.into();
    let promise = credentials()?.create_with_options(&options).map_err(browser_error)?;
    let credential = credential_of(JsFuture::from(promise).await.map_err(browser_error)?)?;
    let answer = RegisterPublicKeyCredential::from(credential);
    let body = serde_json::to_string(&answer).map_err(|e| ApiError::Failed(e.to_string()))?;
    call("POST", &format!("{}/passkey/register/finish", base(link)), Some(body)).await
}

/// Approves with an existing passkey.
pub async fn authenticate_and_approve(link: &str) -> Result<ApprovalOutcome, ApiError> {
    let challenge: RequestChallengeResponse = call("POST", &format!("{}/passkey/authenticate/start", base(link)), None).await?;
    let options: web_sys::CredentialRequestOptions = challenge.into();
    let promise = credentials()?.get_with_options(&options).map_err(browser_error)?;
    let credential = credential_of(JsFuture::from(promise).await.map_err(browser_error)?)?;
    let answer = PublicKeyCredential::from(credential);
    let body = serde_json::to_string(&answer).map_err(|e| ApiError::Failed(e.to_string()))?;
    call("POST", &format!("{}/passkey/authenticate/finish", base(link)), Some(body)).await
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

async fn call<T: DeserializeOwned>(method: &str, url: &str, body: Option<String>) -> Result<T, ApiError> {
    let failed = |_| ApiError::Failed("Passgate could not be reached. Check your connection and try again.".into());
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(failed)?;
    headers.set("accept", "application/json").map_err(failed)?;
    if let Some(body) = &body {
        headers.set("content-type", "application/json").map_err(failed)?;
        init.set_body(&JsValue::from_str(body));
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(failed)?;
    let window = web_sys::window().ok_or_else(|| ApiError::Failed("No browser window".into()))?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_request(&request)).await.map_err(failed)?.dyn_into().map_err(failed)?;
    let text = JsFuture::from(response.text().map_err(failed)?).await.map_err(failed)?.as_string().unwrap_or_default();
    if response.ok() {
        return serde_json::from_str(&text).map_err(|e| ApiError::Failed(format!("Unexpected answer: {e}")));
    }
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) if body.code == error_code::NOT_FOUND => Err(ApiError::NotFound),
        Ok(body) => Err(ApiError::Refused(body)),
        Err(_) => Err(ApiError::Failed(format!("Passgate answered {}. Please try again.", response.status()))),
    }
}
