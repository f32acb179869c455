//! The only place where statuses are chosen: [`Error`] → HTTP response.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::{error_code as code, ErrorBody, ScaRequiredBody};

use crate::error::Error;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Unauthorized => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::BadRequest { .. } | Error::PasskeyRejected(_) => StatusCode::BAD_REQUEST,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::ScaRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            Error::Replay(_) => StatusCode::PRECONDITION_FAILED,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::Database(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Unauthorized => code::UNAUTHORIZED,
            Error::Forbidden(_) => code::FORBIDDEN,
            Error::NotFound(_) => code::NOT_FOUND,
            Error::BadRequest { code, .. } | Error::Conflict { code, .. } => code,
            Error::PasskeyRejected(_) => code::PASSKEY_REJECTED,
            Error::Validation { .. } => code::VALIDATION_FAILED,
            Error::MethodNotAllowed => code::METHOD_NOT_ALLOWED,
            Error::PayloadTooLarge => code::PAYLOAD_TOO_LARGE,
            Error::UnsupportedMediaType => code::UNSUPPORTED_MEDIA_TYPE,
            Error::ScaRequired(c) => c.code,
            Error::Replay(r) => r.code(),
            Error::TooManyRequests { .. } => code::TOO_MANY_REQUESTS,
            Error::Database(_) | Error::Internal(_) => code::INTERNAL,
        }
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
            _ => None,
        };
        let mut response = (status, Json(ErrorBody { code: self.code().into(), message, field })).into_response();
        let headers = response.headers_mut();
        match self {
            Error::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"passgate\""));
            }
            Error::TooManyRequests { retry_after_secs } => {
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

    #[test]
    fn each_error_maps_to_its_protocol_status() {
        let cases = [
            (Error::Unauthorized, 401),
            (Error::Forbidden("x"), 403),
            (Error::NotFound("x"), 404),
            (Error::BadRequest { code: "c", message: "m".into() }, 400),
            (Error::PasskeyRejected("m".into()), 400),
            (Error::Validation { field: "amount".into(), message: "m".into() }, 422),
            (Error::MethodNotAllowed, 405),
            (Error::PayloadTooLarge, 413),
            (Error::UnsupportedMediaType, 415),
            (Error::Replay(ReplayRefusal::Consumed), 412),
            (Error::TooManyRequests { retry_after_secs: 1 }, 429),
            (Error::Conflict { code: "c", message: "m" }, 409),
            (Error::Internal("boom".into()), 500),
        ];
        for (error, status) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
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
        let response = Error::TooManyRequests { retry_after_secs: 1 }.into_response();
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
