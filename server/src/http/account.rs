//! The account area's JSON endpoints: sign-in, the browser session,
//! sign-out. The session rides in a cookie (`HttpOnly`, `SameSite=Strict`,
//! `Secure` outside a plain-http loopback origin). Every state-changing
//! request must come from our own origin ([`same_origin`]) and, once there
//! is a session, carry its CSRF token in `X-CSRF-Token`.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use shared::{AccountSession, CodeInput, RecoveryCodes, SignIn, TotpSetup};
use webauthn_rs::prelude::{CreationChallengeResponse, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse};

use super::error::step_up_wire;
use super::extract::{AppJson, AppPath, AppQuery, Client};
use super::AppState;
use crate::account::{csrf, setup_required, ActivityScope, BrowserCookies, Current, SecondStep, StepUpInput, ACTIVITY_PAGE_MAX, TRUST_MS};
use crate::binding::Purpose;
use crate::error::{Error, Result};
use crate::model::Stage;
use crate::token::Secret;

pub const CSRF_HEADER: &str = "x-csrf-token";

/// The account area's cookies: the browser session, the secret of a
/// trusted browser, and the device cookie of a browser that signed in before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieKind {
    Session,
    Trusted,
    Device,
}

/// `__Host-` makes browsers keep a cookie only when it is `Secure`,
/// host-only and for the whole path; a plain-http loopback origin cannot
/// have it.
fn cookie_name(kind: CookieKind, secure: bool) -> &'static str {
    match (kind, secure) {
        (CookieKind::Session, true) => "__Host-passgate_session",
        (CookieKind::Session, false) => "passgate_session",
        (CookieKind::Trusted, true) => "__Host-passgate_trusted",
        (CookieKind::Trusted, false) => "passgate_trusted",
        (CookieKind::Device, true) => "__Host-passgate_device",
        (CookieKind::Device, false) => "passgate_device",
    }
}

fn read_cookie(parts: &Parts, state: &AppState, kind: CookieKind) -> Option<Secret> {
    cookie_text(parts, state, kind).and_then(|value| Secret::parse(&value).ok())
}

fn cookie_text(parts: &Parts, state: &AppState, kind: CookieKind) -> Option<String> {
    let name = cookie_name(kind, state.config.secure_cookies());
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(|c| c.ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The browser's session secret from its cookie, if it has one.
pub struct SessionCookie(pub Option<Secret>);

impl FromRequestParts<AppState> for SessionCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(SessionCookie(read_cookie(parts, state, CookieKind::Session)))
    }
}

/// The secret of a trusted browser, if this browser has one.
pub struct TrustedCookie(pub Option<Secret>);

impl FromRequestParts<AppState> for TrustedCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(TrustedCookie(read_cookie(parts, state, CookieKind::Trusted)))
    }
}

/// The browser's device cookie, as sent (checked against the email typed).
pub struct DeviceCookie(pub Option<String>);

impl FromRequestParts<AppState> for DeviceCookie {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(DeviceCookie(cookie_text(parts, state, CookieKind::Device).filter(|v| v.len() <= 128)))
    }
}

/// A browser with a live session at any stage (the second step, sign-out).
pub struct Signing(pub Current);

/// A browser that finished signing in.
pub struct SignedIn(pub Current);

/// A browser that finished signing in, or whose company's policy holds it
/// until a second factor is set up (the set-up's own endpoints).
pub struct Enrolling(pub Current);

impl FromRequestParts<AppState> for Signing {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let SessionCookie(token) = SessionCookie::from_request_parts(parts, state).await.unwrap_or(SessionCookie(None));
        let token = token.ok_or(Error::NotSignedIn)?;
        if !parts.method.is_safe() {
            let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if !csrf::verify(&token, presented) {
                return Err(Error::CsrfRefused);
            }
        }
        Ok(Signing(state.accounts.current(token, true).await?))
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Signing(current) = Signing::from_request_parts(parts, state).await?;
        match current.session.stage {
            Stage::SignedIn => Ok(SignedIn(current)),
            Stage::SecondFactor => Err(Error::SecondFactorRequired),
            Stage::Enrol => Err(setup_required()),
        }
    }
}

impl FromRequestParts<AppState> for Enrolling {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Signing(current) = Signing::from_request_parts(parts, state).await?;
        match current.session.stage {
            Stage::SignedIn | Stage::Enrol => Ok(Enrolling(current)),
            Stage::SecondFactor => Err(Error::SecondFactorRequired),
        }
    }
}

/// Refuses a state-changing request that does not come from our origin:
/// its `Origin` must be ours (or, without one, `Sec-Fetch-Site` must say
/// same-origin). Sign-in has no session yet, so this is its CSRF defence.
pub async fn same_origin(State(app): State<AppState>, request: Request, next: Next) -> Response {
    if request.method().is_safe() || from_our_origin(request.headers(), &app.config.origin.origin().ascii_serialization()) {
        next.run(request).await
    } else {
        Error::CsrfRefused.into_response()
    }
}

fn from_our_origin(headers: &HeaderMap, ours: &str) -> bool {
    match headers.get(header::ORIGIN) {
        Some(origin) => origin.as_bytes() == ours.as_bytes(),
        None => headers.get("sec-fetch-site").is_some_and(|site| site == "same-origin"),
    }
}

fn session_cookie(app: &AppState, value: Option<&Secret>) -> [(header::HeaderName, HeaderValue); 1] {
    [(header::SET_COOKIE, set_cookie(app, CookieKind::Session, value))]
}

/// A device cookie lasts a year; each sign-in renews it.
const DEVICE_COOKIE_DAYS: i64 = 365;

/// `Set-Cookie` for `kind`: the secret, or (`None`) its removal. The
/// session's lasts as long as the browser (the server ends it after 5
/// idle minutes); a trusted browser's as long as the trust.
fn set_cookie(app: &AppState, kind: CookieKind, value: Option<&Secret>) -> HeaderValue {
    set_cookie_text(app, kind, value.map(Secret::expose))
}

fn set_cookie_text(app: &AppState, kind: CookieKind, value: Option<&str>) -> HeaderValue {
    let secure = app.config.secure_cookies();
    let mut cookie = Cookie::build((cookie_name(kind, secure), value.unwrap_or("")))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure);
    match (value, kind) {
        (None, _) => cookie = cookie.max_age(cookie::time::Duration::ZERO),
        (Some(_), CookieKind::Trusted) => cookie = cookie.max_age(cookie::time::Duration::milliseconds(TRUST_MS)),
        (Some(_), CookieKind::Device) => cookie = cookie.max_age(cookie::time::Duration::days(DEVICE_COOKIE_DAYS)),
        (Some(_), CookieKind::Session) => {}
    }
    // A cookie of our own name and a base64url value is always a valid header.
    HeaderValue::from_str(&cookie.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

pub async fn sign_in(
    State(app): State<AppState>,
    Client(client): Client,
    SessionCookie(session): SessionCookie,
    TrustedCookie(trusted): TrustedCookie,
    DeviceCookie(device): DeviceCookie,
    AppJson(form): AppJson<SignIn>,
) -> Result<Response> {
    let cookies = BrowserCookies { session: session.as_ref(), trusted: trusted.as_ref(), device: device.as_deref() };
    let signed_in = app.accounts.sign_in(&form.email, &form.password, cookies, &client).await?;
    let mut response = moved_on(&app, &signed_in.current).await?;
    response.headers_mut().append(header::SET_COOKIE, set_cookie_text(&app, CookieKind::Device, Some(&signed_in.device_cookie)));
    Ok(response)
}

/// The start of a sign-in with a passkey alone: the challenge, and the
/// ceremony's secret that its finish names. (Not a cookie: the autofill's
/// request and the button's may be under way at once in one browser.)
#[derive(serde::Serialize)]
pub struct PasskeySignInStart {
    ceremony: String,
    challenge: RequestChallengeResponse,
}

pub async fn start_passkey_sign_in(State(app): State<AppState>, Client(client): Client) -> Result<Json<PasskeySignInStart>> {
    let start = app.accounts.start_passkey_sign_in(&client).await?;
    Ok(Json(PasskeySignInStart { ceremony: start.ceremony.expose().to_owned(), challenge: start.challenge }))
}

pub async fn finish_passkey_sign_in(
    State(app): State<AppState>,
    Client(client): Client,
    SessionCookie(session): SessionCookie,
    AppPath(ceremony): AppPath<String>,
    AppJson(answer): AppJson<PublicKeyCredential>,
) -> Result<Response> {
    let cookies = BrowserCookies { session: session.as_ref(), trusted: None, device: None };
    let current = app.accounts.finish_passkey_sign_in(cookies, &ceremony, &answer, &client).await?;
    moved_on(&app, &current).await
}

/// The answer of a step that gave the browser a new session: its cookie and view.
async fn moved_on(app: &AppState, current: &Current) -> Result<Response> {
    Ok((session_cookie(app, Some(&current.token)), Json(app.accounts.view(current).await?)).into_response())
}

/// The session as it stands; looking is not activity (a page checking its
/// session does not keep it alive).
pub async fn session(State(app): State<AppState>, SessionCookie(token): SessionCookie) -> Result<Json<AccountSession>> {
    let current = app.accounts.current(token.ok_or(Error::NotSignedIn)?, false).await?;
    Ok(Json(app.accounts.view(&current).await?))
}

/// "Stay signed in": a request, so activity.
pub async fn keep_alive(State(app): State<AppState>, Signing(current): Signing) -> Result<Json<AccountSession>> {
    Ok(Json(app.accounts.view(&current).await?))
}

pub async fn sign_out(State(app): State<AppState>, Client(client): Client, Signing(current): Signing) -> Result<Response> {
    app.accounts.sign_out(&current, &client).await?;
    Ok((session_cookie(&app, None), StatusCode::NO_CONTENT).into_response())
}

/// Every session and every trusted browser of the user end: both cookies go.
pub async fn sign_out_everywhere(State(app): State<AppState>, Client(client): Client, SignedIn(current): SignedIn) -> Result<Response> {
    app.accounts.sign_out_everywhere(&current, &client).await?;
    let cookies = [
        (header::SET_COOKIE, set_cookie(&app, CookieKind::Session, None)),
        (header::SET_COOKIE, set_cookie(&app, CookieKind::Trusted, None)),
    ];
    Ok((cookies, StatusCode::NO_CONTENT).into_response())
}

/// `?for=`: what a step-up is for.
#[derive(Debug, Default, Deserialize)]
pub struct StepUpFor {
    #[serde(rename = "for", default)]
    purpose: Purpose,
}

/// What binding a factor (or replacing the app) still waits for (`done` when nothing).
pub async fn step_up_status(
    State(app): State<AppState>,
    Enrolling(current): Enrolling,
    AppQuery(step_up_for): AppQuery<StepUpFor>,
) -> Result<Json<shared::StepUp>> {
    Ok(Json(step_up_wire(app.accounts.step_up_due(&current, step_up_for.purpose).await?.as_ref())))
}

pub async fn send_step_up_code(
    State(app): State<AppState>,
    Client(client): Client,
    Enrolling(current): Enrolling,
    AppQuery(step_up_for): AppQuery<StepUpFor>,
) -> Result<StatusCode> {
    app.accounts.send_step_up_code(&current, step_up_for.purpose, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn step_up(
    State(app): State<AppState>,
    Client(client): Client,
    Enrolling(current): Enrolling,
    AppQuery(step_up_for): AppQuery<StepUpFor>,
    AppJson(proof): AppJson<shared::StepUpProof>,
) -> Result<Json<shared::StepUp>> {
    let input = StepUpInput { password: proof.password.as_deref(), code: proof.code.as_deref(), by_sms: proof.by_sms };
    Ok(Json(step_up_wire(app.accounts.step_up(&current, input, step_up_for.purpose, &client).await?.as_ref())))
}

pub async fn start_passkey_step_up(State(app): State<AppState>, Enrolling(current): Enrolling) -> Result<Json<RequestChallengeResponse>> {
    Ok(Json(app.accounts.start_passkey_step_up(&current).await?))
}

pub async fn finish_passkey_step_up(
    State(app): State<AppState>,
    Client(client): Client,
    Enrolling(current): Enrolling,
    AppQuery(step_up_for): AppQuery<StepUpFor>,
    AppJson(answer): AppJson<PublicKeyCredential>,
) -> Result<Json<shared::StepUp>> {
    let due = app.accounts.finish_passkey_step_up(&current, &answer, step_up_for.purpose, &client).await?;
    Ok(Json(step_up_wire(due.as_ref())))
}

/// The new session's cookie and view, and the trusted browser's cookie.
pub(super) async fn second_step_done(app: &AppState, step: SecondStep) -> Result<Response> {
    let mut response = moved_on(app, &step.current).await?;
    if let Some(trusted) = &step.trusted {
        response.headers_mut().append(header::SET_COOKIE, set_cookie(app, CookieKind::Trusted, Some(trusted)));
    }
    Ok(response)
}

/// A new authenticator app's key: its QR code and its text.
pub async fn start_totp(State(app): State<AppState>, Enrolling(current): Enrolling) -> Result<Json<TotpSetup>> {
    let setup = app.accounts.start_totp(&current).await?;
    Ok(Json(TotpSetup { secret: setup.key.base32(), otpauth_uri: setup.otpauth_uri, qr_svg: setup.qr_svg, replacing: setup.replacing }))
}

/// Ten new recovery codes, shown once; the old ones stop working.
pub async fn renew_recovery_codes(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
) -> Result<Json<RecoveryCodes>> {
    let codes = app.accounts.renew_recovery_codes(&current, &client).await?;
    Ok(Json(RecoveryCodes { recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(), session: None }))
}

pub async fn confirm_totp(
    State(app): State<AppState>,
    Client(client): Client,
    Enrolling(current): Enrolling,
    AppJson(input): AppJson<CodeInput>,
) -> Result<Response> {
    let (codes, next) = app.accounts.confirm_totp(&current, &input.code, &client).await?;
    let recovery_codes = codes.iter().map(|c| c.expose().to_owned()).collect();
    Ok(match next {
        Some(next) => {
            let session = Some(app.accounts.view(&next).await?);
            (session_cookie(&app, Some(&next.token)), Json(RecoveryCodes { recovery_codes, session })).into_response()
        }
        None => Json(RecoveryCodes { recovery_codes, session: None }).into_response(),
    })
}

/// The second step of a sign-in with an authenticator app's code.
pub async fn sign_in_with_totp(
    State(app): State<AppState>,
    Client(client): Client,
    Signing(current): Signing,
    AppJson(input): AppJson<CodeInput>,
) -> Result<Response> {
    let step = app.accounts.sign_in_with_totp(&current, &input.code, input.trust_browser, &client).await?;
    second_step_done(&app, step).await
}

pub async fn sign_in_with_recovery_code(
    State(app): State<AppState>,
    Client(client): Client,
    Signing(current): Signing,
    AppJson(input): AppJson<CodeInput>,
) -> Result<Response> {
    let step = app.accounts.sign_in_with_recovery_code(&current, &input.code, input.trust_browser, &client).await?;
    second_step_done(&app, step).await
}

pub async fn security(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<shared::SecurityOverview>> {
    let overview = app.accounts.security_overview(&current).await?;
    Ok(Json(shared::SecurityOverview {
        two_factor: overview.two_factor.as_str().to_owned(),
        authenticator_app: overview.authenticator_app.map(|t| shared::FactorUse {
            added_at: t.confirmed_at.unwrap_or(t.created_at).to_rfc3339(),
            last_used_at: t.last_used_at.map(|at| at.to_rfc3339()),
        }),
        recovery_codes_left: overview.recovery_codes_left,
        passkeys: overview.passkeys.into_iter().map(super::company::passkey_info).collect(),
    }))
}

pub async fn rename_passkey(
    State(app): State<AppState>,
    SignedIn(current): SignedIn,
    AppPath(passkey_id): AppPath<String>,
    AppJson(input): AppJson<shared::PasskeyRename>,
) -> Result<StatusCode> {
    app.accounts.rename_passkey(&current, &passkey_id, &input.name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn remove_passkey(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppPath(passkey_id): AppPath<String>,
) -> Result<StatusCode> {
    app.accounts.remove_own_passkey(&current, &passkey_id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `?scope=mine|company&category=factor&before=123&limit=50`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityParams {
    scope: Option<String>,
    category: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

pub async fn activity(
    State(app): State<AppState>,
    SignedIn(current): SignedIn,
    AppQuery(params): AppQuery<ActivityParams>,
) -> Result<Json<shared::ActivityPage>> {
    let scope = match params.scope.as_deref() {
        None | Some("mine") => ActivityScope::Mine,
        Some("company") => ActivityScope::Company,
        Some(_) => return Err(Error::Validation { field: "scope".into(), message: "must be mine or company".into() }),
    };
    let limit = params.limit.unwrap_or(50);
    let entries = app.accounts.activity(&current, scope, params.category.as_deref(), params.before, limit).await?;
    let next_before =
        (u32::try_from(entries.len()).ok() == Some(limit.clamp(1, ACTIVITY_PAGE_MAX))).then(|| entries.last().map(|e| e.id)).flatten();
    let events = entries
        .into_iter()
        .map(|e| shared::ActivityEvent {
            id: e.id,
            at: e.row.at,
            kind: e.row.kind,
            user_id: e.row.user_id,
            detail: e.row.detail,
            client_ip: e.row.client_ip,
            user_agent: e.row.user_agent,
        })
        .collect();
    Ok(Json(shared::ActivityPage { events, next_before }))
}

pub async fn trusted_browsers(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<Vec<shared::TrustedBrowserInfo>>> {
    let browsers = app.accounts.trusted_browsers(&current).await?;
    Ok(Json(
        browsers
            .into_iter()
            .map(|d| shared::TrustedBrowserInfo {
                id: d.id,
                name: d.name,
                trusted_at: d.created_at.to_rfc3339(),
                last_used_at: d.last_used_at.to_rfc3339(),
                expires_at: d.expires_at.to_rfc3339(),
            })
            .collect(),
    ))
}

pub async fn revoke_trusted_browser(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppPath(browser_id): AppPath<String>,
) -> Result<StatusCode> {
    app.accounts.revoke_trusted_browsers(&current, Some(&browser_id), &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn revoke_all_trusted_browsers(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
) -> Result<Response> {
    app.accounts.revoke_trusted_browsers(&current, None, &client).await?;
    // This browser's own trust went with the others: its cookie too.
    Ok(([(header::SET_COOKIE, set_cookie(&app, CookieKind::Trusted, None))], StatusCode::NO_CONTENT).into_response())
}

/// `?trust_browser=true`: trust this browser once the second step is done.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustParam {
    #[serde(default)]
    pub trust_browser: bool,
}

pub async fn start_passkey_step(State(app): State<AppState>, Signing(current): Signing) -> Result<Json<RequestChallengeResponse>> {
    Ok(Json(app.accounts.start_passkey_step(&current).await?))
}

pub async fn finish_passkey_step(
    State(app): State<AppState>,
    Client(client): Client,
    Signing(current): Signing,
    AppQuery(trust): AppQuery<TrustParam>,
    AppJson(answer): AppJson<PublicKeyCredential>,
) -> Result<Response> {
    let step = app.accounts.finish_passkey_step(&current, &answer, trust.trust_browser, &client).await?;
    second_step_done(&app, step).await
}

pub async fn start_passkey_add(State(app): State<AppState>, SignedIn(current): SignedIn) -> Result<Json<CreationChallengeResponse>> {
    Ok(Json(app.accounts.start_passkey_add(&current).await?))
}

pub async fn finish_passkey_add(
    State(app): State<AppState>,
    Client(client): Client,
    SignedIn(current): SignedIn,
    AppJson(answer): AppJson<RegisterPublicKeyCredential>,
) -> Result<StatusCode> {
    app.accounts.finish_passkey_add(&current, &answer, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
