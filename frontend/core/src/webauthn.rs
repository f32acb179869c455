//! Passkeys: WebAuthn between the server's JSON (webauthn-rs's
//! `CreationChallengeResponse`, `RequestChallengeResponse`,
//! `RegisterPublicKeyCredential`, `PublicKeyCredential`) and the browser's
//! `navigator.credentials`, and the browser's refusals in words for the user.
//!
//! The JSON is the browser's own (`JSON.parse`, `JSON.stringify`); only the
//! binary fields change form: base64url strings on the wire, bytes in the
//! browser. (webauthn-rs-proto's `wasm` feature does the same through serde
//! and typed structs: about a third of the page's download.)

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::base64url;
use crate::Failure;

/// Creates a passkey with the options of a `…/register/start` answer
/// (`challenge`); the body of its `…/finish`.
pub async fn register(challenge: &JsValue) -> Result<String, Failure> {
    let options = creation_options(challenge).map_err(|_| Failure::unexpected())?;
    let promise = credentials()?.create_with_options(&options).map_err(browser_error)?;
    registration(&credential(promise).await?).map_err(|_| Failure::unexpected())
}

/// Signs the challenge of an `…/authenticate/start` answer with a passkey;
/// the body of its `…/finish`. With `autofill`, the browser offers the
/// passkeys in a field's suggestions (conditional mediation) and waits,
/// silently, until the user picks one or `autofill` aborts the request.
pub async fn authenticate(challenge: &JsValue, autofill: Option<&web_sys::AbortSignal>) -> Result<String, Failure> {
    let options = request_options(challenge).map_err(|_| Failure::unexpected())?;
    if let Some(signal) = autofill {
        set(&options, "mediation", &"conditional".into()).map_err(|_| Failure::unexpected())?;
        set(&options, "signal", signal).map_err(|_| Failure::unexpected())?;
    }
    let promise = credentials()?.get_with_options(&options).map_err(browser_error)?;
    assertion(&credential(promise).await?).map_err(|_| Failure::unexpected())
}

/// Whether the browser offers passkeys in a field's autofill (conditional
/// mediation), for [`authenticate`]'s `autofill`.
pub async fn autofill_available() -> bool {
    let Some(window) = web_sys::window() else { return false };
    let Ok(class) = get(&window, "PublicKeyCredential") else { return false };
    let Ok(check) = get(&class, "isConditionalMediationAvailable") else { return false };
    let Some(check) = check.dyn_ref::<js_sys::Function>() else { return false };
    match check.call0(&class).map(|p| p.dyn_into::<js_sys::Promise>()) {
        Ok(Ok(promise)) => JsFuture::from(promise).await.ok().and_then(|v| v.as_bool()).unwrap_or(false),
        _ => false,
    }
}

fn credentials() -> Result<web_sys::CredentialsContainer, Failure> {
    Ok(web_sys::window().ok_or_else(|| Failure::local("No browser window"))?.navigator().credentials())
}

async fn credential(promise: js_sys::Promise) -> Result<web_sys::PublicKeyCredential, Failure> {
    let value = JsFuture::from(promise).await.map_err(browser_error)?;
    value.dyn_into().map_err(|_| Failure::local("Your browser returned no passkey. Please try again."))
}

/// The browser's WebAuthn errors, in words for the user.
fn browser_error(error: JsValue) -> Failure {
    let name = error.dyn_ref::<web_sys::DomException>().map(|e| e.name()).unwrap_or_default();
    Failure::local(match name.as_str() {
        "NotAllowedError" => "The passkey request was cancelled or timed out. You can try again.",
        "InvalidStateError" => "This device already holds a passkey for this account.",
        "NotSupportedError" => "This browser cannot use passkeys.",
        "SecurityError" => "This page's address is not allowed to use passkeys.",
        "AbortError" => "The passkey request was interrupted. You can try again.",
        _ => "The passkey request failed. You can try again.",
    })
}

/// `navigator.credentials.create()` options from `register/start`'s answer.
fn creation_options(answer: &JsValue) -> Result<web_sys::CredentialCreationOptions, JsValue> {
    drop_nulls(answer)?;
    let public_key = get(answer, "publicKey")?;
    to_bytes(&public_key, "challenge")?;
    to_bytes(&get(&public_key, "user")?, "id")?;
    each_credential_id(&public_key, "excludeCredentials")?;
    Ok(answer.clone().unchecked_into())
}

/// `navigator.credentials.get()` options from `authenticate/start`'s answer.
fn request_options(answer: &JsValue) -> Result<web_sys::CredentialRequestOptions, JsValue> {
    drop_nulls(answer)?;
    let public_key = get(answer, "publicKey")?;
    to_bytes(&public_key, "challenge")?;
    each_credential_id(&public_key, "allowCredentials")?;
    Ok(answer.clone().unchecked_into())
}

/// The body of `register/finish`: the new credential.
fn registration(credential: &web_sys::PublicKeyCredential) -> Result<String, JsValue> {
    let response = get(credential, "response")?;
    let body = Object::new();
    for field in ["attestationObject", "clientDataJSON"] {
        set(&body, field, &encoded(&get(&response, field)?)?)?;
    }
    let results = credential.get_client_extension_results();
    let extensions = Object::new();
    copy_bool(&results, &extensions, "appid")?;
    // `credProps: {rk}`: the browser's belief that it made a discoverable credential.
    let cred_props = get(&results, "credProps")?;
    if !cred_props.is_undefined() && !cred_props.is_null() {
        let rk = Object::new();
        copy_bool(&cred_props, &rk, "rk")?;
        set(&extensions, "credProps", &rk)?;
    }
    credential_json(credential, &body, &extensions)
}

/// The body of `authenticate/finish`: the signed assertion.
fn assertion(credential: &web_sys::PublicKeyCredential) -> Result<String, JsValue> {
    let response = get(credential, "response")?;
    let body = Object::new();
    for field in ["authenticatorData", "clientDataJSON", "signature"] {
        set(&body, field, &encoded(&get(&response, field)?)?)?;
    }
    let user_handle = get(&response, "userHandle")?;
    let user_handle = if user_handle.is_null() || user_handle.is_undefined() { JsValue::NULL } else { encoded(&user_handle)? };
    set(&body, "userHandle", &user_handle)?;
    let extensions = Object::new();
    copy_bool(&credential.get_client_extension_results(), &extensions, "appid")?;
    credential_json(credential, &body, &extensions)
}

fn credential_json(credential: &web_sys::PublicKeyCredential, response: &Object, extensions: &Object) -> Result<String, JsValue> {
    let raw_id = encoded(&get(credential, "rawId")?)?;
    let json = Object::new();
    set(&json, "id", &raw_id)?;
    set(&json, "rawId", &raw_id)?;
    set(&json, "response", response)?;
    set(&json, "type", &"public-key".into())?;
    set(&json, "extensions", extensions)?;
    JSON::stringify(&json)?.as_string().ok_or_else(|| JsValue::from_str("JSON.stringify"))
}

fn get(object: &JsValue, key: &str) -> Result<JsValue, JsValue> {
    Reflect::get(object, &key.into())
}

fn set(object: &JsValue, key: &str, value: &JsValue) -> Result<(), JsValue> {
    Reflect::set(object, &key.into(), value).map(drop)
}

/// An ArrayBuffer (or view) as a base64url string.
fn encoded(buffer: &JsValue) -> Result<JsValue, JsValue> {
    if !buffer.is_instance_of::<js_sys::ArrayBuffer>() && !js_sys::ArrayBuffer::is_view(buffer) {
        return Err("expected binary data".into());
    }
    Ok(base64url::encode(&Uint8Array::new(buffer).to_vec()).into())
}

/// `object[key]`, a base64url string, becomes bytes.
fn to_bytes(object: &JsValue, key: &str) -> Result<(), JsValue> {
    let text = get(object, key)?.as_string().ok_or_else(|| JsValue::from_str(key))?;
    let bytes = base64url::decode(&text).ok_or_else(|| JsValue::from_str(key))?;
    set(object, key, &Uint8Array::from(bytes.as_slice()))
}

/// `public_key[list][i].id` become bytes, when the list is there.
fn each_credential_id(public_key: &JsValue, list: &str) -> Result<(), JsValue> {
    match get(public_key, list)?.dyn_into::<Array>() {
        Ok(credentials) => credentials.iter().try_for_each(|credential| to_bytes(&credential, "id")),
        Err(_) => Ok(()),
    }
}

fn copy_bool(from: &JsValue, to: &Object, key: &str) -> Result<(), JsValue> {
    match get(from, key)?.as_bool() {
        Some(value) => set(to, key, &value.into()),
        None => Ok(()),
    }
}

/// Removes the `null` members, deeply: webauthn-rs writes absent options as
/// `null`, where the browser wants them absent (`null` is no list).
fn drop_nulls(value: &JsValue) -> Result<(), JsValue> {
    if let Some(list) = value.dyn_ref::<Array>() {
        return list.iter().try_for_each(|item| drop_nulls(&item));
    }
    if !value.is_object() {
        return Ok(());
    }
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let member = Reflect::get(value, &key)?;
        if member.is_null() {
            Reflect::delete_property(value.unchecked_ref::<Object>(), &key)?;
        } else {
            drop_nulls(&member)?;
        }
    }
    Ok(())
}

#[cfg(all(test, target_arch = "wasm32"))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    /// The value of a JavaScript expression.
    fn js(expression: &str) -> JsValue {
        js_sys::Function::new_no_args(&format!("return {expression};")).call0(&JsValue::NULL).unwrap()
    }

    fn bytes(object: &JsValue, key: &str) -> Vec<u8> {
        let value = get(object, key).unwrap();
        assert!(value.is_instance_of::<Uint8Array>(), "{key} is not bytes");
        Uint8Array::new(&value).to_vec()
    }

    fn has(object: &JsValue, key: &str) -> bool {
        Reflect::has(object, &key.into()).unwrap()
    }

    #[wasm_bindgen_test]
    fn creation_options_carry_bytes_and_no_nulls() {
        let answer = JSON::parse(
            r#"{"publicKey":{"rp":{"name":"Passgate","id":"localhost"},"user":{"id":"AQID","name":"jane","displayName":"Jane"},
            "challenge":"3q2-7w","pubKeyCredParams":[{"type":"public-key","alg":-7}],"timeout":60000,"attestation":null,
            "excludeCredentials":[{"type":"public-key","id":"-_8","transports":null}],
            "authenticatorSelection":{"residentKey":"required","authenticatorAttachment":null}}}"#,
        )
        .unwrap();
        let options: JsValue = creation_options(&answer).unwrap().into();
        let public_key = get(&options, "publicKey").unwrap();
        assert_eq!(bytes(&public_key, "challenge"), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(bytes(&get(&public_key, "user").unwrap(), "id"), [1, 2, 3]);
        let excluded = Array::from(&get(&public_key, "excludeCredentials").unwrap()).get(0);
        assert_eq!(bytes(&excluded, "id"), [0xfb, 0xff]);
        assert!(!has(&excluded, "transports"));
        assert!(!has(&public_key, "attestation"));
        let selection = get(&public_key, "authenticatorSelection").unwrap();
        assert!(!has(&selection, "authenticatorAttachment") && has(&selection, "residentKey"));
        assert_eq!(get(&public_key, "timeout").unwrap().as_f64(), Some(60000.0));
    }

    #[wasm_bindgen_test]
    fn request_options_carry_bytes_with_or_without_a_list() {
        let answer = JSON::parse(
            r#"{"publicKey":{"challenge":"AAEC","allowCredentials":[{"type":"public-key","id":"AQ"},{"type":"public-key","id":"Ag"}]}}"#,
        )
        .unwrap();
        let public_key = get(&request_options(&answer).unwrap(), "publicKey").unwrap();
        assert_eq!(bytes(&public_key, "challenge"), [0, 1, 2]);
        let allowed = Array::from(&get(&public_key, "allowCredentials").unwrap());
        assert_eq!((bytes(&allowed.get(0), "id"), bytes(&allowed.get(1), "id")), (vec![1], vec![2]));

        let discoverable =
            JSON::parse(r#"{"publicKey":{"challenge":"AAEC","allowCredentials":null,"userVerification":"required"}}"#).unwrap();
        let public_key = get(&request_options(&discoverable).unwrap(), "publicKey").unwrap();
        assert!(!has(&public_key, "allowCredentials"));
    }

    #[wasm_bindgen_test]
    fn options_refuse_a_challenge_that_is_not_base64url() {
        for answer in [r#"{"publicKey":{"challenge":"not base64!"}}"#, r#"{"publicKey":{"challenge":42}}"#, r#"{"publicKey":{}}"#] {
            assert!(request_options(&JSON::parse(answer).unwrap()).is_err(), "{answer}");
        }
        let bad_user_id = r#"{"publicKey":{"challenge":"AAEC","user":{"id":"A"}}}"#;
        assert!(creation_options(&JSON::parse(bad_user_id).unwrap()).is_err());
    }

    #[wasm_bindgen_test]
    fn a_new_credential_becomes_the_json_of_register_finish() {
        let credential = js(r#"{
            rawId: new Uint8Array([1, 2, 3]).buffer,
            response: { attestationObject: new Uint8Array([4, 5]).buffer, clientDataJSON: new Uint8Array([123, 125]) },
            getClientExtensionResults() { return { appid: false, credProps: { rk: true }, other: 1 }; },
        }"#);
        assert_eq!(
            registration(credential.unchecked_ref()).unwrap(),
            r#"{"id":"AQID","rawId":"AQID","response":{"attestationObject":"BAU","clientDataJSON":"e30"},"type":"public-key","extensions":{"appid":false,"credProps":{"rk":true}}}"#
        );
    }

    #[wasm_bindgen_test]
    fn an_assertion_becomes_the_json_of_authenticate_finish() {
        let credential = |user_handle: &str| {
            js(&format!(
                r#"{{
                rawId: new Uint8Array([1, 2, 3]).buffer,
                response: {{ authenticatorData: new Uint8Array([1]).buffer, clientDataJSON: new Uint8Array([2]).buffer,
                    signature: new Uint8Array([3]).buffer, userHandle: {user_handle} }},
                getClientExtensionResults() {{ return {{}}; }},
            }}"#
            ))
        };
        assert_eq!(
            assertion(credential("null").unchecked_ref()).unwrap(),
            r#"{"id":"AQID","rawId":"AQID","response":{"authenticatorData":"AQ","clientDataJSON":"Ag","signature":"Aw","userHandle":null},"type":"public-key","extensions":{}}"#
        );
        let with_handle = assertion(credential("new Uint8Array([255]).buffer").unchecked_ref()).unwrap();
        assert!(with_handle.contains(r#""userHandle":"_w""#), "{with_handle}");
    }

    #[wasm_bindgen_test]
    fn a_credential_without_binary_fields_is_refused() {
        let credential = js(r#"{
            rawId: new Uint8Array([1]).buffer,
            response: { authenticatorData: "AQ", clientDataJSON: new Uint8Array([2]).buffer, signature: new Uint8Array([3]).buffer },
            getClientExtensionResults() { return {}; },
        }"#);
        assert!(assertion(credential.unchecked_ref()).is_err());
    }

    #[wasm_bindgen_test]
    fn the_browsers_refusals_are_in_words_for_the_user() {
        let refusal = |name: &str| browser_error(web_sys::DomException::new_with_message_and_name("", name).unwrap().into());
        assert_eq!(refusal("NotAllowedError").message, "The passkey request was cancelled or timed out. You can try again.");
        assert_eq!(refusal("InvalidStateError").message, "This device already holds a passkey for this account.");
        assert_eq!(refusal("SomethingNew").message, "The passkey request failed. You can try again.");
        assert_eq!(browser_error(JsValue::from_str("NotAllowedError")).message, refusal("SomethingNew").message);
        assert_eq!(refusal("NotAllowedError").status, 0);
    }
}
