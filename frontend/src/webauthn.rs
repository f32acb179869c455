//! WebAuthn between the server's JSON (webauthn-rs's `CreationChallengeResponse`,
//! `RequestChallengeResponse`, `RegisterPublicKeyCredential`,
//! `PublicKeyCredential`) and the browser's `navigator.credentials`.
//!
//! The JSON is the browser's own (`JSON.parse`, `JSON.stringify`); only the
//! binary fields change form: base64url strings on the wire, bytes in the
//! browser. (webauthn-rs-proto's `wasm` feature does the same through serde
//! and typed structs: about a third of the page's download.)

use js_sys::{Array, Object, Reflect, Uint8Array, JSON};
use wasm_bindgen::{JsCast, JsValue};

use crate::base64url;

/// `navigator.credentials.create()` options from `register/start`'s answer.
pub fn creation_options(answer: &JsValue) -> Result<web_sys::CredentialCreationOptions, JsValue> {
    drop_nulls(answer)?;
    let public_key = get(answer, "publicKey")?;
    to_bytes(&public_key, "challenge")?;
    to_bytes(&get(&public_key, "user")?, "id")?;
    each_credential_id(&public_key, "excludeCredentials")?;
    Ok(answer.clone().unchecked_into())
}

/// `navigator.credentials.get()` options from `authenticate/start`'s answer.
pub fn request_options(answer: &JsValue) -> Result<web_sys::CredentialRequestOptions, JsValue> {
    drop_nulls(answer)?;
    let public_key = get(answer, "publicKey")?;
    to_bytes(&public_key, "challenge")?;
    each_credential_id(&public_key, "allowCredentials")?;
    Ok(answer.clone().unchecked_into())
}

/// The body of `register/finish`: the new credential.
pub fn registration(credential: &web_sys::PublicKeyCredential) -> Result<String, JsValue> {
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
pub fn assertion(credential: &web_sys::PublicKeyCredential) -> Result<String, JsValue> {
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

/// `{"password": …}`: the password step of a first passkey, escaped by
/// the browser's own JSON.
pub fn password_body(password: &str) -> Result<String, JsValue> {
    let json = Object::new();
    set(&json, "password", &password.into())?;
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
