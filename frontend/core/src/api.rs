//! Calls to Passgate's API: the JSON body, the session's CSRF token on
//! every state-changing request, and what went wrong in words for the user.
//! A page reads the answer as it likes: serde where bytes do not count,
//! [`crate::wire`] where they do.

use std::cell::RefCell;

use js_sys::JSON;
use shared::error_code;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::wire;

thread_local! {
    /// The CSRF token of the browser's current session (from its latest view).
    static CSRF: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The token that every request but a `GET` carries from now on; `None`
/// once the session is over. A page without a session never sets one.
pub fn remember_csrf(token: Option<String>) {
    CSRF.with(|csrf| *csrf.borrow_mut() = token);
}

const NOT_REACHED: &str = "Passgate could not be reached. Check your connection and try again.";

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The server's error code; empty when the server was not reached.
    pub code: String,
    pub message: String,
    /// The answer's HTTP status; 0 when there was none.
    pub status: u16,
    /// The error answer's JSON text, if it was one: [`Failure::step_up`]
    /// reads it again when a page asks.
    pub body: Option<String>,
    /// A 429's `Retry-After`, in seconds.
    pub retry_after: Option<u64>,
}

impl Failure {
    /// A failure of the page's own (the server not reached, the browser's).
    pub fn local(message: &str) -> Self {
        Failure { code: String::new(), message: message.into(), status: 0, body: None, retry_after: None }
    }

    fn offline() -> Self {
        Failure::local(NOT_REACHED)
    }

    /// The request never reached Passgate (offline, or the network failed).
    pub fn not_reached(&self) -> bool {
        self.status == 0 && self.message == NOT_REACHED
    }

    /// An answer that is not what the page expected.
    pub fn unexpected() -> Self {
        Failure::local("Passgate sent an unexpected answer. Please try again.")
    }

    /// The server's error answer (`status`, body `text`) as a failure.
    fn answered(status: u16, text: &str, retry_after: Option<u64>) -> Self {
        match JSON::parse(text).ok().as_ref().and_then(wire::code_and_message) {
            Some((code, message)) => Failure { code, message, status, body: Some(text.to_owned()), retry_after },
            None => Failure { status, retry_after, ..Failure::local(&format!("Passgate answered {status}. Please try again.")) },
        }
    }

    /// `step_up_required`: what the session must prove again. Read from
    /// the answer when asked, so that a page which never asks (the
    /// approval page) carries no reader for it.
    pub fn step_up(&self) -> Option<shared::StepUp> {
        JSON::parse(self.body.as_deref()?).ok().as_ref().and_then(wire::step_up_of)
    }

    pub fn signed_out(&self) -> bool {
        self.code == error_code::NOT_SIGNED_IN || self.session_ended()
    }

    /// This browser's session ended (five idle minutes, or signed out
    /// everywhere): the sign-in page says so.
    pub fn session_ended(&self) -> bool {
        self.code == error_code::SESSION_ENDED
    }
}

/// One request; the answer's text when it succeeded (empty for a 204).
pub async fn send(method: &str, url: &str, body: Option<String>) -> Result<String, Failure> {
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
    let retry_after = response.headers().get("retry-after").ok().flatten().and_then(|s| s.trim().parse().ok());
    Err(Failure::answered(response.status(), &text, retry_after))
}

/// One request whose answer is JSON, parsed by the browser.
pub async fn send_json(method: &str, url: &str, body: Option<String>) -> Result<JsValue, Failure> {
    JSON::parse(&send(method, url, body).await?).map_err(|_| Failure::unexpected())
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    #[wasm_bindgen_test]
    fn an_error_answer_keeps_its_code_message_and_step_up() {
        let body = r#"{"code":"step_up_required","message":"Confirm it's you.","step_up":{"done":false,"password":true,"ways":["passkey","totp"]}}"#;
        let failure = Failure::answered(403, body, None);
        assert_eq!(failure.code, error_code::STEP_UP_REQUIRED);
        assert_eq!(failure.message, "Confirm it's you.");
        assert_eq!(failure.status, 403);
        let step_up = failure.step_up().unwrap();
        assert!(!step_up.done && step_up.password);
        assert_eq!(step_up.ways, ["passkey", "totp"]);
    }

    #[wasm_bindgen_test]
    fn only_a_request_that_never_left_reads_as_not_reached() {
        assert!(Failure::offline().not_reached());
        assert!(!Failure::unexpected().not_reached());
        assert!(!Failure::answered(502, "<html>Bad Gateway</html>", None).not_reached());
    }

    #[wasm_bindgen_test]
    fn an_ended_session_reads_as_signed_out() {
        let failure = Failure::answered(401, r#"{"code":"session_ended","message":"Your session ended"}"#, None);
        assert!(failure.session_ended() && failure.signed_out());
        assert!(!Failure::answered(403, r#"{"code":"forbidden","message":"No"}"#, None).signed_out());
    }

    #[wasm_bindgen_test]
    fn an_answer_that_is_no_error_body_says_the_status() {
        let failure = Failure::answered(502, "<html>Bad Gateway</html>", Some(30));
        assert_eq!(failure.code, "");
        assert_eq!(failure.message, "Passgate answered 502. Please try again.");
        assert_eq!((failure.status, failure.retry_after), (502, Some(30)));
        // A body with a code but no message is no error body either.
        assert_eq!(Failure::answered(500, r#"{"code":"internal"}"#, None).code, "");
    }
}
