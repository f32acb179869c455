//! The account area's calls to the server: JSON through serde (this
//! bundle is not the approval page, whose size rules are stricter), the
//! session's CSRF token on every state-changing request, and the errors in
//! words for the user.

use std::cell::RefCell;

use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::{ErrorBody, StepUp};
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
    /// `step_up_required`: what the session must prove again.
    pub step_up: Option<StepUp>,
    /// A 429's `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A failure of this page's own (the server not reached, the browser's).
    pub fn local(message: &str) -> Self {
        Failure { code: String::new(), message: message.into(), status: 0, step_up: None, retry_after: None }
    }

    fn offline() -> Self {
        Failure::local("Passgate could not be reached. Check your connection and try again.")
    }

    fn unexpected() -> Self {
        Failure::local("Passgate sent an unexpected answer. Please try again.")
    }

    pub fn signed_out(&self) -> bool {
        self.code == shared::error_code::NOT_SIGNED_IN || self.session_ended()
    }

    /// This browser's session ended (five idle minutes, or signed out
    /// everywhere): the sign-in page says so.
    pub fn session_ended(&self) -> bool {
        self.code == shared::error_code::SESSION_ENDED
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
    let retry_after = response.headers().get("retry-after").ok().flatten().and_then(|s| s.trim().parse().ok());
    Err(match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => Failure { code: body.code, message: body.message, status, step_up: body.step_up, retry_after },
        Err(_) => Failure { status, retry_after, ..Failure::local(&format!("Passgate answered {status}. Please try again.")) },
    })
}

/// WebAuthn in the account area: the server's options in, the browser's
/// answer out, through the approval page's own conversions.
pub mod passkey {
    use shared::{AccountSession, StepUp};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    use super::{decode, send, Failure};
    use crate::webauthn;

    /// The message of a request this page withdrew (the autofill's, when
    /// the user chose another way).
    pub const ABORTED: &str = "The passkey request was withdrawn.";

    fn failed(text: &str) -> Failure {
        Failure::local(text)
    }

    fn parse(text: &str) -> Result<JsValue, Failure> {
        js_sys::JSON::parse(text).map_err(|_| Failure::unexpected())
    }

    fn credentials() -> Result<web_sys::CredentialsContainer, Failure> {
        Ok(web_sys::window().ok_or_else(|| failed("No browser window"))?.navigator().credentials())
    }

    /// The browser's WebAuthn errors, in words for the user.
    fn browser_error(error: JsValue) -> Failure {
        let name = error.dyn_ref::<web_sys::DomException>().map(|e| e.name()).unwrap_or_default();
        failed(match name.as_str() {
            "NotAllowedError" => "The passkey request was cancelled or timed out. You can try again.",
            "AbortError" => ABORTED,
            "InvalidStateError" => "This device already holds a passkey for your account.",
            "NotSupportedError" => "This browser cannot use passkeys.",
            _ => "The passkey request failed. You can try again.",
        })
    }

    async fn credential(promise: js_sys::Promise) -> Result<web_sys::PublicKeyCredential, Failure> {
        let value = JsFuture::from(promise).await.map_err(browser_error)?;
        value.dyn_into().map_err(|_| failed("Your browser returned no passkey. Please try again."))
    }

    /// Whether the browser offers passkeys in a field's autofill
    /// (conditional mediation).
    pub async fn autofill_available() -> bool {
        let Some(window) = web_sys::window() else { return false };
        let Ok(class) = js_sys::Reflect::get(&window, &"PublicKeyCredential".into()) else { return false };
        let Ok(check) = js_sys::Reflect::get(&class, &"isConditionalMediationAvailable".into()) else { return false };
        let Some(check) = check.dyn_ref::<js_sys::Function>() else { return false };
        match check.call0(&class).map(|p| p.dyn_into::<js_sys::Promise>()) {
            Ok(Ok(promise)) => JsFuture::from(promise).await.ok().and_then(|v| v.as_bool()).unwrap_or(false),
            _ => false,
        }
    }

    /// A sign-in with a passkey alone. With `autofill`, the browser offers
    /// the passkeys in the email field's suggestions and the request waits,
    /// silently, until the user picks one or `autofill` aborts it.
    pub async fn sign_in(autofill: Option<&web_sys::AbortSignal>) -> Result<AccountSession, Failure> {
        let start = parse(&send("POST", "/api/account/passkey-sign-in", None).await?)?;
        let field = |name: &str| js_sys::Reflect::get(&start, &name.into()).map_err(|_| Failure::unexpected());
        let ceremony = field("ceremony")?.as_string().ok_or_else(Failure::unexpected)?;
        let options = webauthn::request_options(&field("challenge")?).map_err(|_| Failure::unexpected())?;
        if let Some(signal) = autofill {
            js_sys::Reflect::set(&options, &"mediation".into(), &"conditional".into()).map_err(|_| Failure::unexpected())?;
            js_sys::Reflect::set(&options, &"signal".into(), signal).map_err(|_| Failure::unexpected())?;
        }
        let answer = credential(credentials()?.get_with_options(&options).map_err(browser_error)?).await?;
        let body = webauthn::assertion(&answer).map_err(|_| Failure::unexpected())?;
        decode(send("POST", &format!("/api/account/passkey-sign-in/{ceremony}"), Some(body)).await?)
    }

    /// The second step of a sign-in with one of the user's passkeys.
    pub async fn sign_in_step(trust: bool) -> Result<AccountSession, Failure> {
        let challenge = parse(&send("POST", "/api/account/sign-in/passkey/start", None).await?)?;
        let options = webauthn::request_options(&challenge).map_err(|_| Failure::unexpected())?;
        let answer = credential(credentials()?.get_with_options(&options).map_err(browser_error)?).await?;
        let body = webauthn::assertion(&answer).map_err(|_| Failure::unexpected())?;
        decode(send("POST", &format!("/api/account/sign-in/passkey/finish?trust_browser={trust}"), Some(body)).await?)
    }

    /// Confirms it's the user before binding a factor: a passkey with user
    /// verification proves both factors at once.
    /// `query`: the step-up's `?for=`, if any.
    pub async fn step_up(query: &str) -> Result<StepUp, Failure> {
        let challenge = parse(&send("POST", "/api/account/step-up/passkey/start", None).await?)?;
        let options = webauthn::request_options(&challenge).map_err(|_| Failure::unexpected())?;
        let answer = credential(credentials()?.get_with_options(&options).map_err(browser_error)?).await?;
        let body = webauthn::assertion(&answer).map_err(|_| Failure::unexpected())?;
        decode(send("POST", &format!("/api/account/step-up/passkey/finish{query}"), Some(body)).await?)
    }

    /// Creates a new (discoverable) passkey for the signed-in user.
    pub async fn add() -> Result<(), Failure> {
        let challenge = parse(&send("POST", "/api/account/passkeys/start", None).await?)?;
        let options = webauthn::creation_options(&challenge).map_err(|_| Failure::unexpected())?;
        let answer = credential(credentials()?.create_with_options(&options).map_err(browser_error)?).await?;
        let body = webauthn::registration(&answer).map_err(|_| Failure::unexpected())?;
        send("POST", "/api/account/passkeys/finish", Some(body)).await.map(|_| ())
    }
}
