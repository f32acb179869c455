//! Extractors: the partner's bearer token, JSON bodies whose rejections use
//! the API's error format, and the raw parts of a sensitive request.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::AppState;
use crate::error::Error;
use crate::model::{Caller, ClientInfo, IdempotencyKey};
use crate::sca::{ProtectedRequest, RequestParts};
use crate::token::Secret;

pub const PREFERENCE_HEADER: &str = "x-qonto-2fa-preference";
pub const SCA_TOKEN_HEADER: &str = "x-qonto-sca-session-token";
pub const MFA_HEADER: &str = "x-qonto-mfa";
pub const IDEMPOTENCY_HEADER: &str = "x-qonto-idempotency-key";
/// How error bodies name the idempotency header.
pub const IDEMPOTENCY_HEADER_NAME: &str = "X-Qonto-Idempotency-Key";

/// Where the request came from: the client's address (when served over a
/// socket: the peer's, or behind a trusted proxy the one it names, see
/// [`client_addr`](super::client_addr)) and the user agent, for the audit
/// log and per-client limits.
pub struct Client(pub ClientInfo);

impl<S: Send + Sync> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(client_info(parts, &AppState::from_ref(state))))
    }
}

fn client_info(parts: &Parts, state: &AppState) -> ClientInfo {
    let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let ip = peer.map(|peer| super::client_addr::client_ip(peer, &parts.headers, &state.config.trusted_proxies));
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    ClientInfo::new(ip, user_agent)
}

/// The partner and user behind `Authorization: Bearer <token>`.
pub struct Partner(pub Caller);

impl FromRequestParts<AppState> for Partner {
    type Rejection = Error;

    #[tracing::instrument(name = "bearer_auth", skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .and_then(|t| Secret::parse(t).ok())
            .ok_or(Error::Unauthorized)?;
        Ok(Partner(state.sca.caller(&token).await?))
    }
}

/// The token of an `Authorization` value with the `Bearer` scheme, whose
/// name is case-insensitive (RFC 6750 section 2.1, RFC 9110 section 11.1).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A path parameter; one that does not even decode (invalid UTF-8) names
/// nothing that exists: 404 in the API's format.
pub struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppPath<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(AppPath(value)),
            Err(_) => Err(Error::NotFound("No such resource")),
        }
    }
}

/// The query string's parameters; one that does not parse is a 422 in the
/// API's format.
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(AppQuery(value)),
            Err(rejection) => Err(Error::Validation { field: "query".into(), message: rejection.body_text() }),
        }
    }
}

/// A JSON body; malformed JSON is a 400, a wrong shape a 422 naming the
/// field, a missing JSON content type a 415, an oversized body a 413.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(from_bytes_rejection)?;
        parse_json(&bytes).map(AppJson)
    }
}

/// A sensitive request: the parsed body plus every raw part the approval
/// is bound to.
pub struct Sensitive<T> {
    pub body: T,
    method: String,
    path: String,
    query: Option<String>,
    preference: Option<Vec<u8>>,
    sca_token: Option<String>,
    mfa: Option<String>,
    idempotency_key: Option<IdempotencyKey>,
    client: ClientInfo,
    raw_body: Bytes,
}

impl<T> Sensitive<T> {
    pub fn protected(&self) -> ProtectedRequest<'_> {
        ProtectedRequest {
            parts: RequestParts {
                method: &self.method,
                path: &self.path,
                query: self.query.as_deref(),
                preference: self.preference.as_deref(),
                body: &self.raw_body,
            },
            sca_token: self.sca_token.as_deref(),
            mfa: self.mfa.as_deref(),
            idempotency_key: self.idempotency_key.as_ref(),
            client: &self.client,
        }
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Sensitive<T>
where
    AppState: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        require_json(req.headers())?;
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let query = req.uri().query().map(str::to_owned);
        let headers = req.headers();
        let preference = headers.get(PREFERENCE_HEADER).map(|v| v.as_bytes().to_vec());
        // A token that is not even text cannot be ours: it reads as empty,
        // hence invalid.
        let sca_token = headers.get(SCA_TOKEN_HEADER).map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
        let mfa = headers.get(MFA_HEADER).map(|v| v.to_str().map(str::to_owned).unwrap_or_default());
        let idempotency_key = headers
            .get(IDEMPOTENCY_HEADER)
            .map(|v| IdempotencyKey::parse(v.as_bytes()))
            .transpose()
            .map_err(|e| Error::Validation { field: IDEMPOTENCY_HEADER_NAME.into(), message: format!("{IDEMPOTENCY_HEADER_NAME}: {e}") })?;
        let (parts, body) = req.into_parts();
        let client = client_info(&parts, &AppState::from_ref(state));
        let req = Request::from_parts(parts, body);
        let raw_body = Bytes::from_request(req, state).await.map_err(from_bytes_rejection)?;
        let body = parse_json(&raw_body)?;
        Ok(Sensitive { body, method, path, query, preference, sca_token, mfa, idempotency_key, client, raw_body })
    }
}

fn require_json(headers: &HeaderMap) -> Result<(), Error> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(Error::UnsupportedMediaType)
    }
}

fn from_bytes_rejection(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge
    } else {
        Error::BadRequest { code: shared::error_code::INVALID_JSON, message: "The request body could not be read".into() }
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    let malformed =
        |e: serde_json::Error| Error::BadRequest { code: shared::error_code::INVALID_JSON, message: format!("Malformed JSON: {e}") };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        de.end().map_err(malformed)?;
    }
    value.map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if !inner.is_data() {
            return malformed(inner);
        }
        let mut field = if path == "." || path == "?" { String::new() } else { path };
        if let Some(missing) = missing_field(&inner) {
            if !field.is_empty() {
                field.push('.');
            }
            field.push_str(&missing);
        }
        if field.is_empty() {
            field = "body".into();
        }
        Error::Validation { message: format!("{field}: {inner}"), field }
    })
}

/// serde reports a missing field at its parent's path, naming it only in
/// the message ("missing field `amount`"); an unknown one is in the path.
fn missing_field(err: &serde_json::Error) -> Option<String> {
    let text = err.to_string();
    let rest = text.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::TransferRequest;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(bearer_token(value), Some("abc"), "{value}");
        }
        for value in ["Basic abc", "Bearerabc", "abc", "Bearer"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    fn field_of(bytes: &[u8]) -> (u16, String) {
        match parse_json::<TransferRequest>(bytes) {
            Err(Error::Validation { field, .. }) => (422, field),
            Err(e) => (e.status().as_u16(), String::new()),
            Ok(_) => (200, String::new()),
        }
    }

    #[test]
    fn malformed_json_is_a_400_and_a_wrong_shape_a_422_naming_the_field() {
        assert_eq!(field_of(b"{").0, 400);
        assert_eq!(field_of(br#"{"amount":"1","currency":"EUR","beneficiary":{"name":"a","iban":"b"}} x"#).0, 400);
        assert_eq!(field_of(br#"{"amount":"1","currency":"EUR","beneficiary":{"name":"a","iban":"b"}}"#).0, 200);
        assert_eq!(field_of(br#"{"amount":12,"currency":"EUR","beneficiary":{"name":"a","iban":"b"}}"#), (422, "amount".into()));
        assert_eq!(field_of(br#"{"currency":"EUR","beneficiary":{"name":"a","iban":"b"}}"#), (422, "amount".into()));
        assert_eq!(field_of(br#"{"amount":"1","currency":"EUR","beneficiary":{"name":"a"}}"#), (422, "beneficiary.iban".into()));
        assert_eq!(field_of(br#"{"amount":"1","currency":"EUR","beneficiary":{"name":"a","iban":7}}"#), (422, "beneficiary.iban".into()));
        assert_eq!(field_of(b"[]"), (422, "body".into()));
    }

    #[test]
    fn an_unknown_field_is_a_422_naming_it() {
        let body = br#"{"amount":"1","currency":"EUR","beneficiary":{"name":"a","iban":"b"},"fee_payer":"me"}"#;
        assert_eq!(field_of(body), (422, "fee_payer".into()));
        let nested = br#"{"amount":"1","currency":"EUR","beneficiary":{"name":"a","iban":"b","bic":"X"}}"#;
        assert_eq!(field_of(nested), (422, "beneficiary.bic".into()));
    }
}
