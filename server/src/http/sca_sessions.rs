//! Polling SCA sessions, and the sandbox's mocked sessions.

use axum::extract::State;
use axum::Json;
use shared::{MessageBody, ScaSessionBody};

use super::extract::{AppPath, Client, Partner};
use super::AppState;
use crate::error::Result;
use crate::sca::Decision;

pub async fn poll(State(app): State<AppState>, Partner(caller): Partner, AppPath(token): AppPath<String>) -> Result<Json<ScaSessionBody>> {
    Ok(Json(app.sca.poll(&caller, &token, false).await?))
}

pub async fn poll_mocked(
    State(app): State<AppState>,
    Partner(caller): Partner,
    AppPath(token): AppPath<String>,
) -> Result<Json<ScaSessionBody>> {
    Ok(Json(app.sca.poll(&caller, &token, true).await?))
}

pub async fn allow_mocked(
    State(app): State<AppState>,
    Partner(caller): Partner,
    Client(client): Client,
    AppPath(token): AppPath<String>,
) -> Result<Json<MessageBody>> {
    app.sca.decide_mocked(&caller, &token, Decision::Allow, &client).await?;
    Ok(success())
}

pub async fn deny_mocked(
    State(app): State<AppState>,
    Partner(caller): Partner,
    Client(client): Client,
    AppPath(token): AppPath<String>,
) -> Result<Json<MessageBody>> {
    app.sca.decide_mocked(&caller, &token, Decision::Deny, &client).await?;
    Ok(success())
}

fn success() -> Json<MessageBody> {
    Json(MessageBody { message: "Success".into() })
}
