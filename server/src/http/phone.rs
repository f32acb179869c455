//! Pairing a phone, from the account area and from the phone: the
//! pairing's ceremony, the device credential's cookie, unpairing; and the
//! phone's approvals (`/device/api/approvals`), each under its device
//! credential.
//!
//! The device credential rides in its own cookie, `HttpOnly`,
//! `SameSite=Strict`, sent only under `/device` (the phone's app and its
//! API): `__Secure-` outside a plain-http loopback origin (`__Host-`
//! would need the whole path).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use cookie::{Cookie, SameSite};
use futures_util::StreamExt as _;
use shared::{ApprovalOutcome, PairedPhoneInfo, PhoneApproval, PushKey, PushSubscriptionJson};
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::account::SignedIn;
use super::extract::{AppJson, AppPath, Client};
use super::AppState;
use crate::error::{Error, Result};
use crate::model::PairedPhone;
use crate::token::Secret;

/// Where the phone's app and API live: the cookie's path.
pub const DEVICE_PATH: &str = "/device";
/// Browsers keep a cookie at most 400 days; the pairing lasts until unpaired.
const COOKIE_DAYS: i64 = 400;

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Secure-passgate_phone"
    } else {
        "passgate_phone"
    }
}

/// `Set-Cookie` for the device credential, or (`None`) its removal.
fn device_cookie(app: &AppState, value: Option<&Secret>) -> HeaderValue {
    let secure = app.config.secure_cookies();
    let max_age = if value.is_some() { cookie::time::Duration::days(COOKIE_DAYS) } else { cookie::time::Duration::ZERO };
    let cookie = Cookie::build((cookie_name(secure), value.map_or("", Secret::expose)))
        .path(DEVICE_PATH)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age);
    // Our own name and a base64url value always make a valid header.
    HeaderValue::from_str(&cookie.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The phone whose device credential the request carries.
pub struct Phone(pub PairedPhone);

impl FromRequestParts<AppState> for Phone {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self> {
        let name = cookie_name(app.config.secure_cookies());
        let credential = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(std::result::Result::ok)
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned());
        Ok(Phone(app.accounts.phone_of_device(credential.as_deref()).await?))
    }
}

fn info(phone: &PairedPhone) -> PairedPhoneInfo {
    PairedPhoneInfo {
        paired_at: phone.paired_at.to_rfc3339(),
        last_used_at: phone.last_used_at.map(|at| at.to_rfc3339()),
        synced: phone.synced,
        notifications: phone.notifications,
    }
}

/// `GET /api/account/phone`: the user's paired phone.
pub async fn paired_phone(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<PairedPhoneInfo>> {
    let phone = app.accounts.paired_phone(&current).await?;
    phone.as_ref().map(|p| Json(info(p))).ok_or(Error::NotFound("No paired phone"))
}

/// `POST /api/account/phone/start`: the phone's passkey challenge.
pub async fn start_pairing(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<CreationChallengeResponse>> {
    Ok(Json(app.accounts.start_pairing(&current).await?))
}

/// `POST /api/account/phone/finish`: pairs the phone; its device
/// credential in the cookie.
pub async fn finish_pairing(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppJson(answer): AppJson<RegisterPublicKeyCredential>,
) -> Result<impl IntoResponse> {
    let device = app.accounts.finish_pairing(&current, &answer, &client).await?;
    let phone = app.accounts.paired_phone(&current).await?.ok_or(Error::Internal("a phone paired a moment ago is gone".into()))?;
    Ok((StatusCode::CREATED, [(header::SET_COOKIE, device_cookie(&app, Some(&device)))], Json(info(&phone))))
}

/// `DELETE /api/account/phone`: unpairs the user's phone.
pub async fn unpair_from_account(State(app): State<AppState>, Client(client): Client, SignedIn(current): SignedIn) -> Result<StatusCode> {
    app.accounts.unpair_from_account(&current, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /device/api/phone`: the phone's own pairing.
pub async fn this_phone(Phone(phone): Phone) -> Json<PairedPhoneInfo> {
    Json(info(&phone))
}

/// `DELETE /device/api/phone`: the phone unpairs itself; its cookie goes.
pub async fn unpair_from_phone(State(app): State<AppState>, Client(client): Client, Phone(phone): Phone) -> Result<impl IntoResponse> {
    app.accounts.unpair_from_phone(&phone, &client).await?;
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, device_cookie(&app, None))]))
}

/// `GET /device/api/push_key`: the key to subscribe to Web Push with;
/// 404 when this server sends none.
pub async fn push_key(State(app): State<AppState>) -> Result<Json<PushKey>> {
    Ok(Json(PushKey { application_server_key: app.accounts.push_key()?.to_owned() }))
}

/// `PUT /device/api/push_subscription`: the phone's push subscription,
/// after pairing and whenever the browser renews it.
pub async fn subscribe(
    State(app): State<AppState>,
    Phone(phone): Phone,
    AppJson(body): AppJson<PushSubscriptionJson>,
) -> Result<StatusCode> {
    app.accounts.subscribe_phone(&phone, &body.endpoint, &body.keys.p256dh, &body.keys.auth).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /device/api/push_subscription`: notifications off.
pub async fn unsubscribe(State(app): State<AppState>, Phone(phone): Phone) -> Result<StatusCode> {
    app.accounts.unsubscribe_phone(&phone).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /device/api/events`: the phone's list of approvals as
/// server-sent events (`event: approvals`, the list as `data`, its
/// version as `id`), sent whenever it changes; `Last-Event-ID` skips the
/// first one if the phone already has it.
pub async fn events(
    State(app): State<AppState>,
    Phone(phone): Phone,
    headers: axum::http::HeaderMap,
) -> Sse<impl futures_util::Stream<Item = Result<Event>>> {
    let last_seen = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let stream = app.sca.phone_events(phone, last_seen).map(|snapshot| {
        let snapshot = snapshot?;
        Event::default().event("approvals").id(snapshot.version).json_data(&snapshot.approvals).map_err(|e| Error::Internal(e.to_string()))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
}

/// `GET /device/api/approvals`: what waits for the phone's user.
pub async fn approvals(State(app): State<AppState>, Phone(phone): Phone) -> Result<Json<Vec<PhoneApproval>>> {
    Ok(Json(app.sca.phone_approvals(&phone).await?))
}

/// `GET /device/api/approvals/{id}`: one of them, whole.
pub async fn approval(State(app): State<AppState>, Phone(phone): Phone, AppPath(id): AppPath<String>) -> Result<Json<PhoneApproval>> {
    Ok(Json(app.sca.phone_approval(&phone, &id).await?))
}

/// `POST /device/api/approvals/{id}/start`: the challenge to sign.
pub async fn start_approval(
    State(app): State<AppState>,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
) -> Result<Json<RequestChallengeResponse>> {
    Ok(Json(app.sca.start_phone_approval(&phone, &id).await?))
}

/// `POST /device/api/approvals/{id}/finish`: approves with the phone's passkey.
pub async fn finish_approval(
    State(app): State<AppState>,
    Client(client): Client,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
    AppJson(answer): AppJson<PublicKeyCredential>,
) -> Result<Json<ApprovalOutcome>> {
    Ok(Json(app.sca.finish_phone_approval(&phone, &id, &answer, &client).await?))
}

/// `POST /device/api/approvals/{id}/deny`: final.
pub async fn deny(
    State(app): State<AppState>,
    Client(client): Client,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
) -> Result<Json<ApprovalOutcome>> {
    Ok(Json(app.sca.deny_on_phone(&phone, &id, &client).await?))
}

/// `POST /device/api/approvals/{id}/report`: "this wasn't me".
pub async fn report(
    State(app): State<AppState>,
    Client(client): Client,
    Phone(phone): Phone,
    AppPath(id): AppPath<String>,
) -> Result<Json<ApprovalOutcome>> {
    Ok(Json(app.sca.report_on_phone(&phone, &id, &client).await?))
}
