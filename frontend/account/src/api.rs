//! The account area's calls to the server: JSON through serde (this
//! bundle is not the approval page, whose size rules are stricter) over
//! [`passgate_ui::api`], which adds the session's CSRF token and words the
//! errors for the user.
//!
//! Every call of the account area goes through here, so this is the one
//! place that marks the session active: a request that went through starts
//! the idle clock again, as it does on the server. Only looking at the
//! session ([`session`]) is no activity, on the server nor here.

use std::cell::Cell;

use passgate_ui::api::send;
use serde::de::DeserializeOwned;
use serde::Serialize;
use shared::AccountSession;

use crate::{Failure, Session};

thread_local! {
    /// The page's session, whose idle clock the calls restart.
    static ACTIVE: Cell<Option<Session>> = const { Cell::new(None) };
}

/// The session whose idle clock the calls restart (once, in the app).
pub fn keep(session: Session) {
    ACTIVE.with(|active| active.set(Some(session)));
}

/// A request went through: the idle clock starts again.
fn active<T>(answer: Result<T, Failure>) -> Result<T, Failure> {
    if answer.is_ok() {
        if let Some(session) = ACTIVE.with(Cell::get) {
            session.touched();
        }
    }
    answer
}

pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, Failure> {
    active(decode(send("GET", url, None).await?))
}

pub async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: Option<&B>) -> Result<T, Failure> {
    active(decode(send("POST", url, encode(body)?).await?))
}

/// A call whose answer has no body (204).
pub async fn call<B: Serialize>(method: &str, url: &str, body: Option<&B>) -> Result<(), Failure> {
    active(send(method, url, encode(body)?).await.map(|_| ()))
}

/// The session as it stands. Looking is not activity: the idle clock
/// goes on.
pub async fn session() -> Result<AccountSession, Failure> {
    decode(send("GET", "/api/account/session", None).await?)
}

fn encode<B: Serialize>(body: Option<&B>) -> Result<Option<String>, Failure> {
    body.map(|b| serde_json::to_string(b).map_err(|_| Failure::unexpected())).transpose()
}

fn decode<T: DeserializeOwned>(text: String) -> Result<T, Failure> {
    serde_json::from_str(&text).map_err(|_| Failure::unexpected())
}

/// WebAuthn in the account area: the server's options in, the browser's
/// answer out, through [`passgate_ui::webauthn`].
pub mod passkey {
    use passgate_ui::api::{send, send_json};
    use passgate_ui::webauthn::{authenticate, register};
    use shared::{AccountSession, StepUp};

    use super::{active, decode};
    use crate::Failure;

    /// A sign-in with a passkey alone. With `autofill`, the browser offers
    /// the passkeys in the email field's suggestions and the request waits,
    /// silently, until the user picks one or `autofill` aborts it.
    pub async fn sign_in(autofill: Option<&web_sys::AbortSignal>) -> Result<AccountSession, Failure> {
        let start = send_json("POST", "/api/account/passkey-sign-in", None).await?;
        let field = |name: &str| js_sys::Reflect::get(&start, &name.into()).map_err(|_| Failure::unexpected());
        let ceremony = field("ceremony")?.as_string().ok_or_else(Failure::unexpected)?;
        let body = authenticate(&field("challenge")?, autofill).await?;
        active(decode(send("POST", &format!("/api/account/passkey-sign-in/{ceremony}"), Some(body)).await?))
    }

    /// The second step of a sign-in with one of the user's passkeys.
    pub async fn sign_in_step(trust: bool) -> Result<AccountSession, Failure> {
        let challenge = send_json("POST", "/api/account/sign-in/passkey/start", None).await?;
        let body = authenticate(&challenge, None).await?;
        active(decode(send("POST", &format!("/api/account/sign-in/passkey/finish?trust_browser={trust}"), Some(body)).await?))
    }

    /// Confirms it's the user before binding a factor: a passkey with user
    /// verification proves both factors at once.
    /// `query`: the step-up's `?for=`, if any.
    pub async fn step_up(query: &str) -> Result<StepUp, Failure> {
        let challenge = send_json("POST", "/api/account/step-up/passkey/start", None).await?;
        let body = authenticate(&challenge, None).await?;
        active(decode(send("POST", &format!("/api/account/step-up/passkey/finish{query}"), Some(body)).await?))
    }

    /// Creates a new (discoverable) passkey for the signed-in user.
    pub async fn add() -> Result<(), Failure> {
        let challenge = send_json("POST", "/api/account/passkeys/start", None).await?;
        let body = register(&challenge).await?;
        active(send("POST", "/api/account/passkeys/finish", Some(body)).await.map(|_| ()))
    }
}
