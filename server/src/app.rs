//! `app(state) -> Router`: the routes and layers. Tests build the same one.

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue};
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::error::Error;
use crate::http::assets::Assets;
use crate::http::{account, approvals, company, confirmations, dev, openapi, phone};
pub use crate::state::AppState;

/// Requests larger than this are refused with 413.
pub const BODY_LIMIT: usize = 64 * 1024;

pub fn app(state: AppState) -> Router {
    let (partner_api, document) = openapi::partner_routes(state.config.sandbox()).split_for_parts();
    // Rendering a document of our own types cannot fail; were it to, the
    // route answers 500 rather than the process refusing to start.
    let document = openapi::Document::render(&document).map_err(|e| tracing::error!(error = %e, "OpenAPI document"));
    let api = partner_api
        .layer(tower::util::option_layer(document.ok().map(axum::Extension)))
        .route("/api/approvals/{link}", get(approvals::view))
        .route("/api/approvals/{link}/deny", post(approvals::deny))
        .route("/api/approvals/{link}/passkey/register/start", post(approvals::start_registration))
        .route("/api/approvals/{link}/passkey/register/finish", post(approvals::finish_registration))
        .route("/api/approvals/{link}/passkey/authenticate/start", post(approvals::start_authentication))
        .route("/api/approvals/{link}/passkey/authenticate/finish", post(approvals::finish_authentication))
        .merge(account_routes(&state));
    let api = if state.config.sandbox() {
        api.route("/dev/sms", get(dev::sms_outbox))
            .route("/dev/push", get(dev::push_outbox))
            .route("/dev/clock/advance", post(dev::advance_clock))
    } else {
        api
    }
    .layer(SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store")));

    // HSTS once the origin is https: browsers never try plain http again.
    let hsts = state.config.https().then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        )
    });
    let assets = Assets::load(&state.config.static_dir);
    api.route("/sca/{link}", assets.page_route())
        .method_not_allowed_fallback(method_not_allowed)
        .fallback_service(assets.service())
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        // No 'unsafe-inline': the page's inline scripts go by their hashes.
        .layer(SetResponseHeaderLayer::if_not_present(header::CONTENT_SECURITY_POLICY, assets.csp()))
        .layer(tower::util::option_layer(hsts))
        .layer(axum::middleware::from_fn(crate::metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            // The matched route, never the raw path: paths carry tokens and
            // links. (Fields are evaluated only when the span is enabled.)
            tracing::info_span!(
                "request",
                method = %req.method(),
                route = req.extensions().get::<axum::extract::MatchedPath>().map_or("static", |p| p.as_str()),
            )
        }))
        .with_state(state)
}

/// The account area's API: only requests from our own origin change anything.
fn account_routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/account/sign-in", post(account::sign_in))
        .route("/api/account/session", get(account::session))
        .route("/api/account/session/keep-alive", post(account::keep_alive))
        .route("/api/account/sign-out", post(account::sign_out))
        .route("/api/account/sign-out-everywhere", post(account::sign_out_everywhere))
        .route("/api/account/sign-in/totp", post(account::sign_in_with_totp))
        .route("/api/account/sign-in/recovery-code", post(account::sign_in_with_recovery_code))
        .route("/api/account/passkey-sign-in", post(account::start_passkey_sign_in))
        .route("/api/account/passkey-sign-in/{ceremony}", post(account::finish_passkey_sign_in))
        .route("/api/account/sign-in/passkey/start", post(account::start_passkey_step))
        .route("/api/account/sign-in/passkey/finish", post(account::finish_passkey_step))
        .route("/api/account/sign-in/phone", post(confirmations::ask_sign_in).get(confirmations::sign_in_status))
        .route("/api/account/sign-in/phone/finish", post(confirmations::finish_sign_in))
        .route("/api/account/passkeys/start", post(account::start_passkey_add))
        .route("/api/account/passkeys/finish", post(account::finish_passkey_add))
        .route("/api/account/step-up", get(account::step_up_status).post(account::step_up))
        .route("/api/account/step-up/sms", post(account::send_step_up_code))
        .route("/api/account/step-up/passkey/start", post(account::start_passkey_step_up))
        .route("/api/account/step-up/passkey/finish", post(account::finish_passkey_step_up))
        .route("/api/account/totp/setup", post(account::start_totp))
        .route("/api/account/recovery-codes", post(account::renew_recovery_codes))
        .route("/api/account/totp/confirm", post(account::confirm_totp))
        .route("/api/account/security", get(account::security))
        .route("/api/account/passkeys/{passkey_id}", patch(account::rename_passkey).delete(account::remove_passkey))
        .route("/api/account/activity", get(account::activity))
        .route("/api/account/trusted-browsers", get(account::trusted_browsers).delete(account::revoke_all_trusted_browsers))
        .route("/api/account/trusted-browsers/{browser_id}", delete(account::revoke_trusted_browser))
        .route("/api/account/phone", get(phone::paired_phone).delete(phone::unpair_from_account))
        .route("/api/account/phone/start", post(phone::start_pairing))
        .route("/api/account/phone/finish", post(phone::finish_pairing))
        .route("/api/account/phone/replace", post(confirmations::ask_replacement).get(confirmations::replacement_status))
        .route("/device/api/phone", get(phone::this_phone).delete(phone::unpair_from_phone))
        .route("/device/api/push_key", get(phone::push_key))
        .route("/device/api/push_subscription", put(phone::subscribe).delete(phone::unsubscribe))
        .route("/device/api/events", get(phone::events))
        .route("/device/api/approvals", get(phone::approvals))
        .route("/device/api/approvals/{id}", get(phone::approval))
        .route("/device/api/approvals/{id}/start", post(phone::start_approval))
        .route("/device/api/approvals/{id}/finish", post(phone::finish_approval))
        .route("/device/api/approvals/{id}/deny", post(phone::deny))
        .route("/device/api/approvals/{id}/report", post(phone::report))
        .route("/device/api/confirmations", get(confirmations::waiting))
        .route("/device/api/confirmations/{id}/start", post(confirmations::start))
        .route("/device/api/confirmations/{id}/finish", post(confirmations::finish))
        .route("/device/api/confirmations/{id}/deny", post(confirmations::deny))
        .route("/api/account/company", get(company::report))
        .route("/api/account/company/policy", put(company::set_policy))
        .route("/api/account/company/users/{user_id}/totp", delete(company::remove_totp))
        .route("/api/account/company/users/{user_id}/passkeys/{passkey_id}", delete(company::remove_passkey))
        .route("/api/account/company/users/{user_id}/phone", delete(company::reset_phone))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), account::same_origin))
}

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}
