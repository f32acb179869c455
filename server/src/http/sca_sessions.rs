//! Polling SCA sessions, and the sandbox's mocked sessions.

use axum::extract::State;
use axum::Json;
use shared::{MessageBody, ScaSessionBody};

use super::extract::{AppPath, Client, Partner};
use super::openapi::{ApiError, RateLimited, SessionToken};
use super::AppState;
use crate::error::Result;
use crate::sca::Decision;

/// Where the session stands: `waiting`, `allow` or `deny` (at most one poll per second).
#[utoipa::path(
    get, path = "/v2/sca_sessions/{token}", tag = "sca", security(("bearer" = [])), params(SessionToken),
    responses(
        (status = 200, description = "Where the session stands.", body = ScaSessionBody),
        (status = 401, response = ApiError), (status = 404, response = ApiError),
        (status = 429, response = RateLimited),
    )
)]
pub async fn poll(State(app): State<AppState>, Partner(caller): Partner, AppPath(token): AppPath<String>) -> Result<Json<ScaSessionBody>> {
    Ok(Json(app.sca.poll(&caller, &token, false).await?))
}

/// A mocked session, read as by polling.
#[utoipa::path(
    get, path = "/v2/mocked_sca_sessions/{token}", tag = "sandbox", security(("bearer" = [])), params(SessionToken),
    responses(
        (status = 200, description = "Where the mocked session stands, as by polling.", body = ScaSessionBody),
        (status = 401, response = ApiError), (status = 404, response = ApiError),
        (status = 429, response = RateLimited),
    )
)]
pub async fn poll_mocked(
    State(app): State<AppState>,
    Partner(caller): Partner,
    AppPath(token): AppPath<String>,
) -> Result<Json<ScaSessionBody>> {
    Ok(Json(app.sca.poll(&caller, &token, true).await?))
}

/// Approve a mocked session as its user would.
#[utoipa::path(
    post, path = "/v2/mocked_sca_sessions/{token}/allow", tag = "sandbox", security(("bearer" = [])), params(SessionToken),
    responses(
        (status = 200, description = "The session is allowed: `{\"message\":\"Success\"}`.", body = MessageBody),
        (status = 401, response = ApiError), (status = 404, response = ApiError),
        (status = 409, response = ApiError),
    )
)]
pub async fn allow_mocked(
    State(app): State<AppState>,
    Partner(caller): Partner,
    Client(client): Client,
    AppPath(token): AppPath<String>,
) -> Result<Json<MessageBody>> {
    app.sca.decide_mocked(&caller, &token, Decision::Allow, &client).await?;
    Ok(success())
}

/// Deny a mocked session as its user would.
#[utoipa::path(
    post, path = "/v2/mocked_sca_sessions/{token}/deny", tag = "sandbox", security(("bearer" = [])), params(SessionToken),
    responses(
        (status = 200, description = "The session is denied: `{\"message\":\"Success\"}`.", body = MessageBody),
        (status = 401, response = ApiError), (status = 404, response = ApiError),
        (status = 409, response = ApiError),
    )
)]
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
