//! The only place where statuses are chosen: [`Error`] → HTTP response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::{error_code as code, ErrorBody, ScaRequiredBody};

use crate::error::Error;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized | Error::SignInRefused | Error::NotSignedIn | Error::SessionEnded | Error::PhoneNotPaired => {
                StatusCode::UNAUTHORIZED
            }
            Error::Forbidden(_)
            | Error::Password(_)
            | Error::CsrfRefused
            | Error::SecondFactorRequired
            | Error::CodeRefused { .. }
            | Error::StepUpCodeRefused { .. }
            | Error::StepUpRequired(_)
            | Error::NotAllowed { .. } => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::BadRequest { .. } | Error::PasskeyRejected(_) => StatusCode::BAD_REQUEST,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::ScaRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            Error::Replay(_) => StatusCode::PRECONDITION_FAILED,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => code::UNAUTHORIZED,
            Error::Forbidden(_) => code::FORBIDDEN,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::BadRequest { code, .. } | Error::Conflict { code, .. } | Error::NotAllowed { code, .. } => code,
            Error::PasskeyRejected(_) => code::PASSKEY_REJECTED,
            Error::Validation { .. } => code::VALIDATION_FAILED,
            Error::MethodNotAllowed => code::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge => code::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => code::UNSUPPORTED_MEDIA_TYPE,
            Error::ScaRequired(c) => c.code,
            Error::Replay(r) => r.code(),
            Error::Password(r) => r.code(),
            Error::TooManyRequests { code, .. } => code,
            Error::IdempotencyKeyReused => code::IDEMPOTENCY_KEY_REUSED,
            Error::SignInRefused => code::SIGN_IN_REFUSED,
            Error::NotSignedIn => code::NOT_SIGNED_IN,
            Error::SessionEnded => code::SESSION_ENDED,
            Error::PhoneNotPaired => code::PHONE_NOT_PAIRED,
            Error::CsrfRefused => code::CSRF_REFUSED,
            Error::SecondFactorRequired => code::SECOND_FACTOR_REQUIRED,
            Error::CodeRefused { .. } | Error::StepUpCodeRefused { .. } => code::TOTP_INVALID,
            Error::StepUpRequired(_) => code::STEP_UP_REQUIRED,
            Error::Unavailable(_) => code::UNAVAILABLE,
            Error::Store(_) | Error::Internal(_) => code::INTERNAL,
        }
    }
}

/// A step-up as the page reads it (`None`: nothing is due).
pub fn step_up_wire(step_up: Option<&crate::binding::StepUp>) -> shared::StepUp {
    match step_up {
        None => shared::StepUp { done: true, password: false, ways: Vec::new() },
        Some(s) => shared::StepUp { done: false, password: s.password, ways: s.ways.iter().map(|w| w.as_str().to_owned()).collect() },
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Error::ScaRequired(challenge) = self {
            let body = ScaRequiredBody {
                code: challenge.code.into(),
                message: challenge.message.into(),
                sca_session_token: challenge.token.map(|t| t.expose().to_owned()),
                action_type: challenge.action_type.map(str::to_owned),
            };
            return (status, Json(body)).into_response();
        }
        let message = if status.is_server_error() {
            // Logged inside the request's span; the client gets a fixed text.
            tracing::error!(error = %self, "request failed");
            "Something went wrong on our side".to_owned()
        } else {
            self.to_string()
        };
        let field = match &self {
            Error::Validation { field, .. } => Some(field.clone()),
            Error::IdempotencyKeyReused => Some(crate::http::extract::IDEMPOTENCY_HEADER_NAME.to_owned()),
            _ => None,
        };
        let step_up = match &self {
            Error::StepUpRequired(step_up) => Some(step_up_wire(Some(step_up))),
            _ => None,
        };
        let mut response = (status, Json(ErrorBody { code: self.code().into(), message, field, step_up })).into_response();
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"passgate\""));
            }
            Error::TooManyRequests { retry_after_secs, .. }
            | Error::Password(crate::error::PasswordRefusal::Blocked { retry_after_secs }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ReplayRefusal, ScaChallenge};

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// One example of every variant, with its status and code. The match
    /// has no wildcard: a new variant does not compile until it is listed.
    fn expected(error: &Error) -> (u16, &'static str) {
        match error {
            Error::Unauthorized => (401, "unauthorized"),
            Error::Forbidden(_) => (403, "forbidden"),
            Error::NotFound(_) => (404, "not_found"),
            Error::BadRequest { .. } => (400, "c"),
            Error::Validation { .. } => (422, "validation_failed"),
            Error::MethodNotAllowed => (405, "method_not_allowed"),
            Error::PayloadTooLarge => (413, "payload_too_large"),
            Error::UnsupportedMediaType => (415, "unsupported_media_type"),
            Error::ScaRequired(_) => (428, "sca_required"),
            Error::Replay(_) => (412, "sca_session_consumed"),
            Error::TooManyRequests { .. } => (429, "sms_rate_limited"),
            Error::IdempotencyKeyReused => (422, "idempotency_key_reused"),
            Error::Conflict { .. } => (409, "approval_closed"),
            Error::PasskeyRejected(_) => (400, "passkey_rejected"),
            Error::Unavailable(_) => (503, "unavailable"),
            Error::SignInRefused => (401, "sign_in_refused"),
            Error::NotSignedIn => (401, "not_signed_in"),
            Error::SessionEnded => (401, "session_ended"),
            Error::PhoneNotPaired => (401, "phone_not_paired"),
            Error::CsrfRefused => (403, "csrf_refused"),
            Error::SecondFactorRequired => (403, "second_factor_required"),
            Error::CodeRefused { .. } => (403, "totp_invalid"),
            Error::StepUpCodeRefused { .. } => (403, "totp_invalid"),
            Error::StepUpRequired(_) => (403, "step_up_required"),
            Error::NotAllowed { .. } => (403, "admin_only"),
            Error::Password(_) => (403, "password_locked"),
            Error::Store(_) => (500, "internal_error"),
            Error::Internal(_) => (500, "internal_error"),
        }
    }

    fn every_variant() -> Vec<Error> {
        vec![
            Error::Unauthorized,
            Error::PhoneNotPaired,
            Error::Forbidden("x"),
            Error::NotFound("x"),
            Error::BadRequest { code: "c", message: "m".into() },
            Error::Validation { field: "amount".into(), message: "m".into() },
            Error::MethodNotAllowed,
            Error::PayloadTooLarge,
            Error::UnsupportedMediaType,
            Error::ScaRequired(ScaChallenge { code: "sca_required", message: "m", token: None, action_type: None }),
            Error::Replay(ReplayRefusal::Consumed),
            Error::TooManyRequests { code: "sms_rate_limited", message: "m", retry_after_secs: 3 },
            Error::IdempotencyKeyReused,
            Error::approval_closed(),
            Error::PasskeyRejected("m".into()),
            Error::Unavailable("down"),
            Error::SignInRefused,
            Error::NotSignedIn,
            Error::SessionEnded,
            Error::CsrfRefused,
            Error::SecondFactorRequired,
            Error::CodeRefused { attempts_left: 2 },
            Error::StepUpCodeRefused { attempts_left: 1 },
            Error::StepUpRequired(crate::binding::StepUp { password: true, ways: vec![crate::binding::Way::Sms] }),
            Error::NotAllowed { code: "admin_only", message: "m" },
            Error::Password(crate::error::PasswordRefusal::Locked),
            Error::Store(crate::store::StoreError::Backend("down".into())),
            Error::Internal("boom".into()),
        ]
    }

    #[tokio::test]
    async fn a_step_up_says_what_to_prove_again() {
        let step_up = crate::binding::StepUp { password: true, ways: vec![crate::binding::Way::Passkey, crate::binding::Way::Totp] };
        let body = body_of(Error::StepUpRequired(step_up).into_response()).await;
        assert_eq!(body["step_up"], serde_json::json!({"done": false, "password": true, "ways": ["passkey", "totp"]}));
        let other = body_of(Error::NotSignedIn.into_response()).await;
        assert!(other.get("step_up").is_none(), "{other}");
    }

    #[tokio::test]
    async fn each_error_maps_to_its_protocol_status_and_code() {
        let all = every_variant();
        let mut seen: Vec<std::mem::Discriminant<Error>> = all.iter().map(std::mem::discriminant).collect();
        seen.dedup();
        assert_eq!(seen.len(), all.len(), "one example per variant");
        for error in all {
            let (status, code) = expected(&error);
            let debug = format!("{error:?}");
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status, "{debug}");
            assert_eq!(body_of(response).await["code"], code, "{debug}");
        }
    }

    #[tokio::test]
    async fn a_401_says_how_to_authenticate() {
        let response = Error::Unauthorized.into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer realm=\"passgate\"");
        assert_eq!(body_of(response).await["code"], "unauthorized");
    }

    #[tokio::test]
    async fn a_429_carries_retry_after() {
        let response = Error::poll_too_soon().into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }

    #[tokio::test]
    async fn a_412_names_its_reason_and_a_422_its_field() {
        let body = body_of(Error::Replay(ReplayRefusal::RequestMismatch).into_response()).await;
        assert_eq!(body["code"], "sca_request_mismatch");
        let body = body_of(Error::Validation { field: "amount".into(), message: "bad".into() }.into_response()).await;
        assert_eq!(body["field"], "amount");
    }

    #[tokio::test]
    async fn a_500_never_shows_the_internal_error() {
        let body = body_of(Error::Internal("secret detail".into()).into_response()).await;
        assert_eq!(body["code"], "internal_error");
        assert!(!body.to_string().contains("secret detail"));
    }

    #[tokio::test]
    async fn a_428_has_the_protocol_shape() {
        let response = Error::ScaRequired(ScaChallenge {
            code: "sca_required",
            message: "SCA required",
            token: None,
            action_type: Some("transfer.single.create"),
        })
        .into_response();
        assert_eq!(response.status(), 428);
        let body = body_of(response).await;
        assert_eq!(body, serde_json::json!({"code":"sca_required","message":"SCA required","action_type":"transfer.single.create"}));
    }
}
