//! The partner API's ledger: `/v2/sepa/*`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::{BeneficiaryRequest, TransferList, TransferRequest};

use super::extract::{Partner, Sensitive};
use super::AppState;
use crate::error::Result;
use crate::ledger::{Action, Created, NewBeneficiary, NewTransfer};

pub async fn create_transfer(
    State(app): State<AppState>,
    Partner(caller): Partner,
    request: Sensitive<TransferRequest>,
) -> Result<Created> {
    let action = Action::Transfer(NewTransfer::try_from(&request.body)?);
    app.sca.run_protected(&caller, &request.protected(), &action).await
}

pub async fn create_beneficiary(
    State(app): State<AppState>,
    Partner(caller): Partner,
    request: Sensitive<BeneficiaryRequest>,
) -> Result<Created> {
    let action = Action::Beneficiary(NewBeneficiary::try_from(&request.body)?);
    app.sca.run_protected(&caller, &request.protected(), &action).await
}

/// The company's latest transfers (not SCA-protected).
pub async fn list_transfers(State(app): State<AppState>, Partner(caller): Partner) -> Result<Json<TransferList>> {
    let transfers = app.store.transfers_of_company(&caller.company_id, 100).await?;
    Ok(Json(TransferList { transfers }))
}

/// `201` with the created resource, the same bytes the first time and to
/// an idempotent retry.
impl IntoResponse for Created {
    fn into_response(self) -> Response {
        (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}
