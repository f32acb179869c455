//! The server's JSON answers (`shared`'s types), read from the value the
//! browser's `JSON.parse` made. By hand rather than through serde: serde's
//! deserializer and its error messages (float formatting included) were a
//! sixth of the approval page's download. Here: the error bodies that every
//! page reads, and the approvals (their view and outcome). The names are
//! `shared`'s serde names; the end-to-end tests go through every screen, so
//! a drift shows there.

use js_sys::{Array, Reflect};
use shared::{ActionSummary, ApprovalOutcome, ApprovalState, ApprovalView, ErrorBody, StepUp};
use wasm_bindgen::{JsCast, JsValue};

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

fn boolean(object: &JsValue, key: &str) -> Option<bool> {
    field(object, key)?.as_bool()
}

/// Absent and `null` are `None`; otherwise `read` must accept the value.
fn optional<T>(object: &JsValue, key: &str, read: impl FnOnce(&JsValue) -> Option<T>) -> Option<Option<T>> {
    let value = field(object, key)?;
    if value.is_null() || value.is_undefined() {
        return Some(None);
    }
    read(&value).map(Some)
}

fn optional_string(object: &JsValue, key: &str) -> Option<Option<String>> {
    optional(object, key, JsValue::as_string)
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
            action: optional(value, "action", ActionSummary::from_json)?,
            state: ApprovalState::from_json(&field(value, "state")?)?,
            seconds_left: seconds_left as u64,
            has_passkey: boolean(value, "has_passkey")?,
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
            step_up: optional(value, "step_up", StepUp::from_json)?,
        })
    }
}

/// An error answer's code and message: what every page reads of it.
pub(crate) fn code_and_message(value: &JsValue) -> Option<(String, String)> {
    Some((string(value, "code")?, string(value, "message")?))
}

/// An error answer's `step_up`, if it has one: read only by the pages
/// that ask (the approval page never gets one, and does not carry this).
pub(crate) fn step_up_of(value: &JsValue) -> Option<StepUp> {
    optional(value, "step_up", StepUp::from_json).flatten()
}

impl FromJson for StepUp {
    fn from_json(value: &JsValue) -> Option<Self> {
        let ways = field(value, "ways")?.dyn_into::<Array>().ok()?;
        Some(StepUp {
            done: boolean(value, "done")?,
            password: boolean(value, "password")?,
            ways: ways.iter().map(|way| way.as_string()).collect::<Option<_>>()?,
        })
    }
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use js_sys::JSON;
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    fn read<T: FromJson>(json: &str) -> Option<T> {
        T::from_json(&JSON::parse(json).unwrap())
    }

    const VIEW: &str = r#"{"partner_name":"Acme Bank","state":"waiting","seconds_left":297,"has_passkey":true,
        "action":{"action_type":"transfer","amount":"120.50","currency":"EUR","payee_name":"Jane Doe",
        "iban":"DE89370400440532013000","reference":null}}"#;

    #[wasm_bindgen_test]
    fn reads_an_approval_view() {
        let view: ApprovalView = read(VIEW).unwrap();
        assert_eq!(
            view,
            ApprovalView {
                partner_name: "Acme Bank".into(),
                action: Some(ActionSummary {
                    action_type: "transfer".into(),
                    amount: Some("120.50".into()),
                    currency: Some("EUR".into()),
                    payee_name: "Jane Doe".into(),
                    iban: "DE89370400440532013000".into(),
                    reference: None,
                }),
                state: ApprovalState::Waiting,
                seconds_left: 297,
                has_passkey: true,
            }
        );
        let no_action = r#"{"partner_name":"Acme","state":"expired","seconds_left":0,"has_passkey":false,"action":null}"#;
        let view: ApprovalView = read(no_action).unwrap();
        assert_eq!((view.action, view.state), (None, ApprovalState::Expired));
    }

    #[wasm_bindgen_test]
    fn refuses_what_is_not_an_approval_view() {
        let changed = |from: &str, to: &str| read::<ApprovalView>(&VIEW.replace(from, to));
        // Unchanged, the view reads: each refusal below is its change's.
        assert!(changed("297", "297").is_some());
        assert_eq!(changed("297", "2.5"), None, "a fraction of a second");
        assert_eq!(changed("297", "-1"), None, "a negative time");
        assert_eq!(changed("\"waiting\"", "\"pending\""), None, "an unknown state");
        assert_eq!(changed("true", "\"yes\""), None, "a string for a boolean");
        assert_eq!(changed("\"reference\":null", "\"reference\":7"), None, "a number for a string");
        assert_eq!(changed("\"payee_name\":\"Jane Doe\",", ""), None, "a missing field");
        assert_eq!(read::<ApprovalView>("[]"), None);
        assert_eq!(read::<ApprovalView>("\"waiting\""), None);
    }

    #[wasm_bindgen_test]
    fn reads_an_outcome_and_every_state() {
        for (name, state) in [
            ("waiting", ApprovalState::Waiting),
            ("allowed", ApprovalState::Allowed),
            ("denied", ApprovalState::Denied),
            ("used", ApprovalState::Used),
            ("expired", ApprovalState::Expired),
        ] {
            let outcome: ApprovalOutcome = read(&format!(r#"{{"state":"{name}"}}"#)).unwrap();
            assert_eq!(outcome.state, state);
        }
        assert_eq!(read::<ApprovalOutcome>(r#"{"state":"Allowed"}"#), None);
    }

    #[wasm_bindgen_test]
    fn reads_error_bodies_with_and_without_a_step_up() {
        let body: ErrorBody = read(r#"{"code":"invalid_input","message":"Bad IBAN","field":"iban"}"#).unwrap();
        assert_eq!((body.field.as_deref(), body.step_up), (Some("iban"), None));
        let body: ErrorBody =
            read(r#"{"code":"step_up_required","message":"Confirm","step_up":{"done":true,"password":false,"ways":[]}}"#).unwrap();
        assert_eq!(body.step_up, Some(StepUp { done: true, password: false, ways: vec![] }));
        assert_eq!(read::<ErrorBody>(r#"{"code":"x","message":"y","step_up":{"done":true,"password":false,"ways":[1]}}"#), None);
        assert_eq!(read::<ErrorBody>(r#"{"message":"no code"}"#), None);
    }
}
