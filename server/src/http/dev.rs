//! Sandbox only: the SMS and push outboxes, and the clock.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use shared::{PushMessage, SmsMessage};

use super::extract::AppJson;
use super::AppState;
use crate::clock::{Clock, Millis};
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
            _ => {
                Err(Error::Validation { field: "limit".into(), message: format!("limit must be a whole number from 1 to {MAX_MESSAGES}") })
            }
        }
    }
}

/// Newest first.
pub async fn sms_outbox(State(app): State<AppState>, Query(filter): Query<OutboxFilter>) -> Result<Json<Vec<SmsMessage>>> {
    let limit = filter.limit()?;
    Ok(Json(app.sca.sms_outbox(filter.to.as_deref(), limit).await?))
}

/// `?limit=` (1 to 200), optional.
#[derive(Debug, Deserialize)]
pub struct PushFilter {
    limit: Option<String>,
}

/// `GET /dev/push`: the pushes sent to paired phones, newest first, each
/// naming the SCA session it announces.
pub async fn push_outbox(State(app): State<AppState>, Query(filter): Query<PushFilter>) -> Result<Json<Vec<PushMessage>>> {
    let limit = OutboxFilter { to: None, limit: filter.limit }.limit()?;
    Ok(Json(app.sca.push_outbox(limit).await?))
}

/// `POST /dev/clock/advance` body: how far to move the sandbox's clock.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    seconds: u32,
}

#[derive(Debug, Serialize)]
pub struct ClockNow {
    now: String,
}

/// Moves the sandbox's clock forward (1 second to 1 day), so that expiry
/// and rate limits can be seen without waiting.
pub async fn advance_clock(State(app): State<AppState>, AppJson(advance): AppJson<Advance>) -> Result<Json<ClockNow>> {
    let Some(clock) = app.dev_clock.as_ref() else { return Err(Error::NotFound("No such resource")) };
    if !(1..=86_400).contains(&advance.seconds) {
        return Err(Error::Validation { field: "seconds".into(), message: "seconds must be from 1 to 86400".into() });
    }
    clock.advance_millis(i64::from(advance.seconds) * Millis::SECOND);
    Ok(Json(ClockNow { now: clock.now().to_rfc3339() }))
}
