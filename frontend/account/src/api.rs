//! The account area's calls to the server: JSON through serde (this
//! bundle is not the approval page, whose size rules are stricter) over
//! [`passgate_ui::api`], which adds the session's CSRF token and words the
//! errors for the user.

use passgate_ui::api::send;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::Failure;

pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, Failure> {
    decode(send("GET", url, None).await?)
}

pub async fn post<B: Serialize, T: DeserializeOwned>(url: &str, body: Option<&B>) -> Result<T, Failure> {
    decode(send("POST", url, encode(body)?).await?)
}

/// A call whose answer has no body (204).
pub async fn call<B: Serialize>(method: &str, url: &str, body: Option<&B>) -> Result<(), Failure> {
    send(method, url, encode(body)?).await.map(|_| ())
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

    use super::decode;
    use crate::Failure;

    /// A sign-in with a passkey alone. With `autofill`, the browser offers
    /// the passkeys in the email field's suggestions and the request waits,
    /// silently, until the user picks one or `autofill` aborts it.
    pub async fn sign_in(autofill: Option<&web_sys::AbortSignal>) -> Result<AccountSession, Failure> {
        let start = send_json("POST", "/api/account/passkey-sign-in", None).await?;
        let field = |name: &str| js_sys::Reflect::get(&start, &name.into()).map_err(|_| Failure::unexpected());
        let ceremony = field("ceremony")?.as_string().ok_or_else(Failure::unexpected)?;
        let body = authenticate(&field("challenge")?, autofill).await?;
        decode(send("POST", &format!("/api/account/passkey-sign-in/{ceremony}"), Some(body)).await?)
    }

    /// The second step of a sign-in with one of the user's passkeys.
    pub async fn sign_in_step(trust: bool) -> Result<AccountSession, Failure> {
        let challenge = send_json("POST", "/api/account/sign-in/passkey/start", None).await?;
        let body = authenticate(&challenge, None).await?;
        decode(send("POST", &format!("/api/account/sign-in/passkey/finish?trust_browser={trust}"), Some(body)).await?)
    }

    /// Confirms it's the user before binding a factor: a passkey with user
    /// verification proves both factors at once.
    /// `query`: the step-up's `?for=`, if any.
    pub async fn step_up(query: &str) -> Result<StepUp, Failure> {
        let challenge = send_json("POST", "/api/account/step-up/passkey/start", None).await?;
        let body = authenticate(&challenge, None).await?;
        decode(send("POST", &format!("/api/account/step-up/passkey/finish{query}"), Some(body)).await?)
    }

    /// Creates a new (discoverable) passkey for the signed-in user.
    pub async fn add() -> Result<(), Failure> {
        let challenge = send_json("POST", "/api/account/passkeys/start", None).await?;
        let body = register(&challenge).await?;
        send("POST", "/api/account/passkeys/finish", Some(body)).await.map(|_| ())
    }
}
