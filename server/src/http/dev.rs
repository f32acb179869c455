//! Sandbox only: the SMS outbox.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::SmsMessage;

use super::AppState;
use crate::error::Result;

#[derive(Debug, Deserialize)]
pub struct OutboxFilter {
    to: Option<String>,
}

pub async fn sms_outbox(State(app): State<AppState>, Query(filter): Query<OutboxFilter>) -> Result<Json<Vec<SmsMessage>>> {
    Ok(Json(app.store.sms_outbox(filter.to.as_deref(), 200).await?))
}
