//! The account area's calls to the server: JSON through serde (this
//! bundle is not the approval page, whose size rules are stricter), the
//! session's CSRF token on every state-changing request, and the errors in
//! words for the user.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::ErrorBody;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

thread_local! {
    /// The CSRF token of the browser's current session (from its latest view).
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub fn remember_csrf(token: Option<String>) {
    CSRF.with(|csrf| *csrf.borrow_mut() = token);
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's error code; empty when the server was not reached.
    pub code: String,
    pub message: String,
    pub status: u16,
}

impl Failure {
    fn offline() -> Self {
        Failure { code: String::new(), message: "Passgate could not be reached. Check your connection and try again.".into(), status: 0 }
    }

    fn unexpected() -> Self {
        Failure { code: String::new(), message: "Passgate sent an unexpected answer. Please try again.".into(), status: 0 }
    }

    pub fn signed_out(&self) -> bool {
        self.code == shared::error_code::NOT_SIGNED_IN
    }
}

pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, Failure> {
    decode(send("GET", url, None).await?)
}

pub async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: Option<&B>) -> Result<T, Failure> {
    let body = body.map(|b| serde_json::to_string(b).map_err(|_| Failure::unexpected())).transpose()?;
    decode(send("POST", url, body).await?)
}

/// A call whose answer has no body (204).
pub async fn call<B: Serialize>(method: &str, url: &str, body: Option<&B>) -> Result<(), Failure> {
    let body = body.map(|b| serde_json::to_string(b).map_err(|_| Failure::unexpected())).transpose()?;
    send(method, url, body).await.map(|_| ())
}

fn decode<T: DeserializeOwned>(text: String) -> Result<T, Failure> {
    serde_json::from_str(&text).map_err(|_| Failure::unexpected())
}

/// One request; the answer's text when it succeeded.
async fn send(method: &str, url: &str, body: Option<String>) -> Result<String, Failure> {
    let offline = |_| Failure::offline();
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let headers = web_sys::Headers::new().map_err(offline)?;
    if method != "GET" {
        if let Some(token) = CSRF.with(|csrf| csrf.borrow().clone()) {
            headers.set("x-csrf-token", &token).map_err(offline)?;
        }
    }
    if let Some(body) = &body {
        headers.set("content-type", "application/json").map_err(offline)?;
        init.set_body(&JsValue::from_str(body));
    }
    init.set_headers(&headers);
    let request = web_sys::Request::new_with_str_and_init(url, &init).map_err(offline)?;
    let window = web_sys::window().ok_or_else(Failure::offline)?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_request(&request)).await.map_err(offline)?.dyn_into().map_err(offline)?;
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise).await.ok().and_then(|t| t.as_string()).unwrap_or_default(),
        Err(_) => String::new(),
    };
    if response.ok() {
        return Ok(text);
    }
    let status = response.status();
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Failure { code: body.code, message: body.message, status },
        Err(_) => Failure { code: String::new(), message: format!("Passgate answered {status}. Please try again."), status },
    })
}
