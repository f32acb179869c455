//! The operator's probes: `/healthz` (the process answers) and `/readyz`
//! (its database is reachable and migrated: send it traffic).

use axum::extract::State;
use axum::Json;
use shared::HealthBody;

use super::openapi::ApiError;
use super::AppState;
use crate::error::Result;

/// The process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`{\"status\":\"ok\"}`: the process answers.", body = HealthBody))
)]
pub async fn healthz() -> Json<HealthBody> {
    Json(HealthBody { status: "ok".into() })
}

/// The database answers and is migrated: send this instance traffic.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`{\"status\":\"ready\"}`: the database answers and is migrated.", body = HealthBody),
        (status = 503, response = ApiError),
    )
)]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<HealthBody>> {
    app.sca.ready().await?;
    Ok(Json(HealthBody { status: "ready".into() }))
}
