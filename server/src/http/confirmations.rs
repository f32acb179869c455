//! What the paired phone confirms for the account area: a sign-in's second
//! step, or pairing a new phone in its place. The browser asks (`202`)
//! and polls; the phone lists what waits for it and allows (an assertion
//! of its passkey) or refuses.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use shared::{ConfirmationAsked, ConfirmationStatus, PhoneConfirmationInfo};
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::account::{second_step_done, SignedIn, Signing, TrustParam};
use super::extract::{AppJson, AppPath, AppQuery, Client};
use super::phone::Phone;
use super::AppState;
use crate::error::Result;
use crate::model::{ConfirmationPurpose, ConfirmationState};

fn asked(expires_in_secs: u64) -> (StatusCode, Json<ConfirmationAsked>) {
    (StatusCode::ACCEPTED, Json(ConfirmationAsked { expires_in_secs }))
}

fn status(state: ConfirmationState) -> Json<ConfirmationStatus> {
    Json(ConfirmationStatus { state: state.as_str().to_owned() })
}

/// `POST /api/account/sign-in/phone`: the second step on the paired phone.
pub async fn ask_sign_in(
    State(app): State<AppState>,
    Client(client): Client,
    Signing(current): Signing,
) -> Result<(StatusCode, Json<ConfirmationAsked>)> {
    Ok(asked(app.accounts.ask_sign_in_on_phone(&current, &client).await?))
}

/// `GET /api/account/sign-in/phone`: whether the phone answered.
pub async fn sign_in_status(State(app): State<AppState>, Signing(current): Signing) -> Result<Json<ConfirmationStatus>> {
    Ok(status(app.accounts.confirmation_state(&current, ConfirmationPurpose::SignIn).await?))
}

/// `POST /api/account/sign-in/phone/finish`: signed in, once the phone allowed it.
pub async fn finish_sign_in(
    State(app): State<AppState>,
    Client(client): Client,
    Signing(current): Signing,
    AppQuery(trust): AppQuery<TrustParam>,
) -> Result<Response> {
    let step = app.accounts.finish_sign_in_on_phone(&current, trust.trust_browser, &client).await?;
    second_step_done(&app, step).await
}

/// `POST /api/account/phone/replace`: asks the paired phone to let this
/// browser's phone take its place.
pub async fn ask_replacement(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
) -> Result<(StatusCode, Json<ConfirmationAsked>)> {
    Ok(asked(app.accounts.ask_phone_replacement(&current, &client).await?))
}

/// `GET /api/account/phone/replace`: whether the paired phone answered.
pub async fn replacement_status(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<ConfirmationStatus>> {
    Ok(status(app.accounts.confirmation_state(&current, ConfirmationPurpose::ReplacePhone).await?))
}

/// `GET /device/api/confirmations`: what waits for the phone's answer.
pub async fn waiting(State(app): State<AppState>, Phone(phone): Phone) -> Result<Json<Vec<PhoneConfirmationInfo>>> {
    Ok(Json(app.accounts.phone_confirmations(&phone).await?))
}

/// `POST /device/api/confirmations/{id}/start`: the challenge to sign.
pub async fn start(
    State(app): State<AppState>,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
) -> Result<Json<RequestChallengeResponse>> {
    Ok(Json(app.accounts.start_phone_confirmation(&phone, &id).await?))
}

/// `POST /device/api/confirmations/{id}/finish`: allows it with the phone's passkey.
pub async fn finish(
    State(app): State<AppState>,
    Client(client): Client,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
    AppJson(answer): AppJson<PublicKeyCredential>,
) -> Result<Json<ConfirmationStatus>> {
    app.accounts.finish_phone_confirmation(&phone, &id, &answer, &client).await?;
    Ok(status(ConfirmationState::Allowed))
}

/// `POST /device/api/confirmations/{id}/deny`: refuses it (final; the user
/// is told by SMS).
pub async fn deny(
    State(app): State<AppState>,
    Client(client): Client,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
) -> Result<Json<ConfirmationStatus>> {
    app.accounts.deny_phone_confirmation(&phone, &id, &client).await?;
    Ok(status(ConfirmationState::Denied))
}
