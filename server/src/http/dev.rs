//! Sandbox only: the SMS outbox.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use shared::SmsMessage;

use super::AppState;
use crate::error::{Error, Result};

/// At most this many messages per answer (also the default).
const MAX_MESSAGES: u32 = 200;

/// `?to=` (a phone number) and `?limit=` (1 to 200), both optional.
#[derive(Debug, Deserialize)]
pub struct OutboxFilter {
    to: Option<String>,
    limit: Option<String>,
}

impl OutboxFilter {
    fn limit(&self) -> Result<u32> {
        let Some(raw) = &self.limit else {
            return Ok(MAX_MESSAGES);
        };
        match raw.parse::<u32>() {
            Ok(n @ 1..=MAX_MESSAGES) => Ok(n),
            _ => Err(Error::Validation {
                field: "limit".into(),
                message: format!("limit must be a whole number from 1 to {MAX_MESSAGES}"),
            }),
        }
    }
}

/// Newest first.
pub async fn sms_outbox(
    State(app): State<AppState>,
    Query(filter): Query<OutboxFilter>,
) -> Result<Json<Vec<SmsMessage>>> {
    let limit = filter.limit()?;
    Ok(Json(
        app.store.sms_outbox(filter.to.as_deref(), limit).await?,
    ))
}
