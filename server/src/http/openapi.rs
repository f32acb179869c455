//! `GET /openapi.json`: the partner API described from the code itself. The
//! routes below are registered in the router and in the document by one
//! `routes!` call each (utoipa-axum), so that what is served and what is
//! documented cannot drift; the bodies are the wire types of `shared`, the
//! error codes its lists.

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use shared::error_code::{self, schema};
use shared::{ErrorBody, ScaRequiredBody};
use utoipa::openapi::response::{Response as DocResponse, ResponseBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, RefOr};
use utoipa::{IntoParams, Modify, OpenApi, ToResponse};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{health, partner, sca_sessions, AppState};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Passgate partner API",
        description = "Sensitive actions answer `428 Precondition Required` with an `sca_session_token`; poll the session, then \
                       replay the same request with `X-Qonto-Sca-Session-Token` once the user approved. See docs/PROTOCOL.md."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ScaRequiredBody), responses(ScaRequired, ReplayRefused, ApiError, RateLimited)),
    tags(
        (name = "ledger", description = "The demo ledger's actions; creations need the user's approval."),
        (name = "sca", description = "Polling SCA sessions."),
        (name = "sandbox", description = "Mocked sessions: the partner plays the user (sandbox only)."),
        (name = "operations", description = "Probes and this document.")
    )
)]
struct PartnerApi;

/// The partner API's routes, with their document. The sandbox's mocked
/// sessions exist, and are documented, only in the sandbox.
pub fn partner_routes(sandbox: bool) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::with_openapi(PartnerApi::openapi())
        .routes(routes!(partner::create_transfer, partner::list_transfers))
        .routes(routes!(partner::create_beneficiary))
        .routes(routes!(sca_sessions::poll))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(document));
    if sandbox {
        routes
            .routes(routes!(sca_sessions::poll_mocked))
            .routes(routes!(sca_sessions::allow_mocked))
            .routes(routes!(sca_sessions::deny_mocked))
    } else {
        routes
    }
}

/// The document as served, rendered once (cloning shares the bytes).
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    pub fn render(api: &utoipa::openapi::OpenApi) -> Result<Self, serde_json::Error> {
        Ok(Document(api.to_json()?.into()))
    }
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "operations", responses((status = 200, description = "This document", content_type = "application/json")))]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.0).into_response()
}

/// The headers of a sensitive action.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Read by the extractor from the raw headers; this type only documents them.
pub struct SensitiveHeaders {
    /// `paired-device` (the default), `passkey`, `sms-otp` (Embed Partners) or `mock` (sandbox). Replay with the same value.
    #[param(rename = "X-Qonto-2fa-Preference")]
    preference: Option<String>,
    /// The approved session's token, on the replay.
    #[param(rename = "X-Qonto-Sca-Session-Token")]
    sca_session_token: Option<String>,
    /// The one-time code, on an `sms-otp` replay.
    #[param(rename = "X-Qonto-MFA")]
    mfa: Option<String>,
    /// Retrying a creation with the same key within 30 minutes returns the first `201` byte for byte.
    #[param(rename = "X-Qonto-Idempotency-Key")]
    idempotency_key: Option<String>,
}

/// The path of a session.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // Parsed by the handlers' path extractor.
pub struct SessionToken {
    /// The `sca_session_token` of the `428`.
    token: String,
}

fn json_response(description: String, body: impl Into<RefOr<utoipa::openapi::schema::Schema>>) -> DocResponse {
    ResponseBuilder::new().description(description).content("application/json", ContentBuilder::new().schema(Some(body)).build()).build()
}

fn error_body(code: Object) -> Object {
    ObjectBuilder::new()
        .property("code", code)
        .required("code")
        .property("message", ObjectBuilder::new().schema_type(Type::String))
        .required("message")
        .property("field", ObjectBuilder::new().schema_type(Type::String).description(Some("The invalid field, for a 422.")))
        .build()
}

fn listed(codes: &[&str]) -> String {
    codes.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
}

/// `428 Precondition Required`.
pub struct ScaRequired;

impl<'r> ToResponse<'r> for ScaRequired {
    fn response() -> (&'r str, RefOr<DocResponse>) {
        let description = format!(
            "The action waits for the user's approval ({}). Poll `/v2/sca_sessions/{{token}}`, then replay with the token.",
            listed(error_code::SCA_NEEDED)
        );
        ("ScaRequired", json_response(description, RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ScaRequiredBody"))).into())
    }
}

/// `412 Precondition Failed`.
pub struct ReplayRefused;

impl<'r> ToResponse<'r> for ReplayRefused {
    fn response() -> (&'r str, RefOr<DocResponse>) {
        let codes = error_code::REPLAY_REFUSED;
        let description = format!("The replayed token does not allow this request ({}).", listed(codes));
        ("ReplayRefused", json_response(description, error_body(schema::one_of(codes, "Why the replay was refused."))).into())
    }
}

/// Any other error: `code` says which.
pub struct ApiError;

impl<'r> ToResponse<'r> for ApiError {
    fn response() -> (&'r str, RefOr<DocResponse>) {
        let body = RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"));
        ("ApiError", json_response("An error; `code` says which (see `ErrorBody`).".into(), body).into())
    }
}

/// `429 Too Many Requests`, with `Retry-After`.
pub struct RateLimited;

impl<'r> ToResponse<'r> for RateLimited {
    fn response() -> (&'r str, RefOr<DocResponse>) {
        let codes = [
            error_code::TOO_MANY_REQUESTS,
            error_code::TOO_MANY_OPEN_SESSIONS,
            error_code::SMS_RATE_LIMITED,
            error_code::PARTNER_RATE_LIMITED,
        ];
        let description = format!("A limit refused the request ({}); retry after `Retry-After` seconds.", listed(&codes));
        let mut response = json_response(description, error_body(schema::one_of(&codes, "Which limit.")));
        let retry_after =
            HeaderBuilder::new().schema(Some(ObjectBuilder::new().schema_type(Type::Integer))).description(Some("Seconds to wait."));
        response.headers.insert("Retry-After".into(), retry_after.build().into());
        ("RateLimited", response.into())
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}
