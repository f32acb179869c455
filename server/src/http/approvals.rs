//! The approval page's JSON endpoints, keyed by the SMS link's secret.

use axum::extract::State;
use axum::Json;
use shared::{ApprovalOutcome, ApprovalView, RegistrationStart};
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::extract::{AppJson, AppPath, Client};
use super::AppState;
use crate::error::Result;

pub async fn view(State(app): State<AppState>, AppPath(link): AppPath<String>) -> Result<Json<ApprovalView>> {
    Ok(Json(app.sca.approval(&link).await?))
}

pub async fn deny(State(app): State<AppState>, Client(client): Client, AppPath(link): AppPath<String>) -> Result<Json<ApprovalOutcome>> {
    Ok(Json(app.sca.deny(&link, &client).await?))
}

pub async fn start_registration(
    State(app): State<AppState>,
    Client(client): Client,
    AppPath(link): AppPath<String>,
    AppJson(start): AppJson<RegistrationStart>,
) -> Result<Json<CreationChallengeResponse>> {
    Ok(Json(app.sca.start_passkey_registration(&link, &start.password, &client).await?))
}

pub async fn finish_registration(
    State(app): State<AppState>,
    Client(client): Client,
    AppPath(link): AppPath<String>,
    AppJson(answer): AppJson<RegisterPublicKeyCredential>,
) -> Result<Json<ApprovalOutcome>> {
    Ok(Json(app.sca.finish_passkey_registration(&link, &answer, &client).await?))
}

pub async fn start_authentication(State(app): State<AppState>, AppPath(link): AppPath<String>) -> Result<Json<RequestChallengeResponse>> {
    Ok(Json(app.sca.start_passkey_authentication(&link).await?))
}

pub async fn finish_authentication(
    State(app): State<AppState>,
    Client(client): Client,
    AppPath(link): AppPath<String>,
    AppJson(answer): AppJson<PublicKeyCredential>,
) -> Result<Json<ApprovalOutcome>> {
    Ok(Json(app.sca.finish_passkey_authentication(&link, &answer, &client).await?))
}
