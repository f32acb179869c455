//! The server's JSON answers (`shared`'s types), read from the value the
//! browser's `JSON.parse` made. By hand rather than through serde: serde's
//! deserializer and its error messages (float formatting included) were a
//! sixth of the page's download. The names are `shared`'s serde names; the
//! end-to-end tests go through every screen, so a drift shows there.

use js_sys::Reflect;
use shared::{ActionSummary, ApprovalOutcome, ApprovalState, ApprovalView, ErrorBody};
use wasm_bindgen::JsValue;

/// A JSON value as one of `shared`'s types; `None` if it is not one.
pub trait FromJson: Sized {
    fn from_json(value: &JsValue) -> Option<Self>;
}

fn field(object: &JsValue, key: &str) -> Option<JsValue> {
    if !object.is_object() {
        return None;
    }
    Reflect::get(object, &key.into()).ok()
}

fn string(object: &JsValue, key: &str) -> Option<String> {
    field(object, key)?.as_string()
}

/// Absent and `null` are `None`; anything but a string is not valid.
fn optional_string(object: &JsValue, key: &str) -> Option<Option<String>> {
    let value = field(object, key)?;
    if value.is_null() || value.is_undefined() {
        return Some(None);
    }
    value.as_string().map(Some)
}

impl FromJson for ApprovalState {
    fn from_json(value: &JsValue) -> Option<Self> {
        Some(match value.as_string()?.as_str() {
            "waiting" => ApprovalState::Waiting,
            "allowed" => ApprovalState::Allowed,
            "denied" => ApprovalState::Denied,
            "used" => ApprovalState::Used,
            "expired" => ApprovalState::Expired,
            _ => return None,
        })
    }
}

impl FromJson for ActionSummary {
    fn from_json(value: &JsValue) -> Option<Self> {
        Some(ActionSummary {
            action_type: string(value, "action_type")?,
            amount: optional_string(value, "amount")?,
            currency: optional_string(value, "currency")?,
            payee_name: string(value, "payee_name")?,
            iban: string(value, "iban")?,
            reference: optional_string(value, "reference")?,
        })
    }
}

impl FromJson for ApprovalView {
    fn from_json(value: &JsValue) -> Option<Self> {
        let seconds_left = field(value, "seconds_left")?.as_f64().filter(|s| s.fract() == 0.0 && *s >= 0.0)?;
        Some(ApprovalView {
            partner_name: string(value, "partner_name")?,
            action: match field(value, "action")? {
                action if action.is_null() || action.is_undefined() => None,
                action => Some(ActionSummary::from_json(&action)?),
            },
            state: ApprovalState::from_json(&field(value, "state")?)?,
            seconds_left: seconds_left as u64,
            has_passkey: field(value, "has_passkey")?.as_bool()?,
        })
    }
}

impl FromJson for ApprovalOutcome {
    fn from_json(value: &JsValue) -> Option<Self> {
        Some(ApprovalOutcome { state: ApprovalState::from_json(&field(value, "state")?)? })
    }
}

impl FromJson for ErrorBody {
    fn from_json(value: &JsValue) -> Option<Self> {
        Some(ErrorBody {
            code: string(value, "code")?,
            message: string(value, "message")?,
            field: optional_string(value, "field")?,
            step_up: None,
        })
    }
}
