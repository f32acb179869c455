//! The partner API's ledger: `/v2/sepa/*`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::{BeneficiaryCreated, BeneficiaryRequest, TransferCreated, TransferList, TransferRequest};

use super::extract::{Partner, Sensitive};
use super::openapi::{ApiError, RateLimited, ReplayRefused, ScaRequired, SensitiveHeaders};
use super::AppState;
use crate::error::Result;
use crate::ledger::{Action, Created, NewBeneficiary, NewTransfer};

/// Create a SEPA transfer: `428` first, `201` on the approved replay.
#[utoipa::path(
    post, path = "/v2/sepa/transfers", tag = "ledger", security(("bearer" = [])),
    params(SensitiveHeaders), request_body = TransferRequest,
    responses(
        (status = 201, description = "Created; the same bytes again for an idempotent retry.", body = TransferCreated),
        (status = 400, response = ApiError), (status = 401, response = ApiError), (status = 403, response = ApiError),
        (status = 412, response = ReplayRefused), (status = 422, response = ApiError), (status = 428, response = ScaRequired),
        (status = 429, response = RateLimited),
    )
)]
pub async fn create_transfer(
    State(app): State<AppState>,
    Partner(caller): Partner,
    request: Sensitive<TransferRequest>,
) -> Result<Created> {
    let action = Action::Transfer(NewTransfer::try_from(&request.body)?);
    app.sca.run_protected(&caller, &request.protected(), &action).await
}

/// Add a beneficiary: `428` first, `201` on the approved replay.
#[utoipa::path(
    post, path = "/v2/sepa/beneficiaries", tag = "ledger", security(("bearer" = [])),
    params(SensitiveHeaders), request_body = BeneficiaryRequest,
    responses(
        (status = 201, description = "Created; the same bytes again for an idempotent retry.", body = BeneficiaryCreated),
        (status = 400, response = ApiError), (status = 401, response = ApiError), (status = 403, response = ApiError),
        (status = 412, response = ReplayRefused), (status = 422, response = ApiError), (status = 428, response = ScaRequired),
        (status = 429, response = RateLimited),
    )
)]
pub async fn create_beneficiary(
    State(app): State<AppState>,
    Partner(caller): Partner,
    request: Sensitive<BeneficiaryRequest>,
) -> Result<Created> {
    let action = Action::Beneficiary(NewBeneficiary::try_from(&request.body)?);
    app.sca.run_protected(&caller, &request.protected(), &action).await
}

/// The company's latest transfers (not SCA-protected).
#[utoipa::path(
    get, path = "/v2/sepa/transfers", tag = "ledger", security(("bearer" = [])),
    responses((status = 200, description = "The latest 100 transfers, newest first.", body = TransferList), (status = 401, response = ApiError))
)]
pub async fn list_transfers(State(app): State<AppState>, Partner(caller): Partner) -> Result<Json<TransferList>> {
    let transfers = app.sca.transfers(&caller, 100).await?;
    Ok(Json(TransferList { transfers }))
}

/// `201` with the created resource, the same bytes the first time and to
/// an idempotent retry.
impl IntoResponse for Created {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}
