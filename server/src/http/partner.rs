//! The partner API's ledger: `/v2/sepa/*`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use shared::{BeneficiaryCreated, BeneficiaryRequest, TransferCreated, TransferList, TransferRequest};

use super::extract::{Partner, Sensitive};
use super::AppState;
use crate::error::{Error, Result};
use crate::ledger::{Action, ActionOutcome, NewBeneficiary, NewTransfer};

pub async fn create_transfer(
    State(app): State<AppState>,
    Partner(caller): Partner,
    request: Sensitive<TransferRequest>,
) -> Result<(StatusCode, Json<TransferCreated>)> {
    let action = Action::Transfer(NewTransfer::try_from(&request.body)?);
    match app.sca.run_protected(&caller, &request.protected(), &action).await? {
        ActionOutcome::Transfer(transfer) => Ok((StatusCode::CREATED, Json(TransferCreated { transfer }))),
        ActionOutcome::Beneficiary(_) => Err(Error::Internal("a transfer produced a beneficiary".into())),
    }
}

pub async fn create_beneficiary(
    State(app): State<AppState>,
    Partner(caller): Partner,
    request: Sensitive<BeneficiaryRequest>,
) -> Result<(StatusCode, Json<BeneficiaryCreated>)> {
    let action = Action::Beneficiary(NewBeneficiary::try_from(&request.body)?);
    match app.sca.run_protected(&caller, &request.protected(), &action).await? {
        ActionOutcome::Beneficiary(beneficiary) => Ok((StatusCode::CREATED, Json(BeneficiaryCreated { beneficiary }))),
        ActionOutcome::Transfer(_) => Err(Error::Internal("a beneficiary produced a transfer".into())),
    }
}

/// The company's latest transfers (not SCA-protected).
pub async fn list_transfers(State(app): State<AppState>, Partner(caller): Partner) -> Result<Json<TransferList>> {
    let transfers = app.store.transfers_of_company(&caller.company_id, 100).await?;
    Ok(Json(TransferList { transfers }))
}
