//! The one error type of Passgate. Each variant is one answer of the
//! protocol; `http::error` maps them to status codes and JSON bodies, and is
//! the only place that does. The domain returns these without knowing HTTP.

use shared::error_code as code;

/// Why a replay's token does not let the action run (`412`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRefusal {
    /// Unknown token, or one of another partner or user.
    Invalid,
    Expired,
    Denied,
    Pending,
    Consumed,
    /// The replayed request differs from the one the user approved.
    RequestMismatch,
    OtpInvalid,
    OtpLocked,
}

impl ReplayRefusal {
    pub fn code(self) -> &'static str {
        match self {
            ReplayRefusal::Invalid => code::SCA_SESSION_INVALID,
            ReplayRefusal::Expired => code::SCA_SESSION_EXPIRED,
            ReplayRefusal::Denied => code::SCA_SESSION_DENIED,
            ReplayRefusal::Pending => code::SCA_SESSION_PENDING,
            ReplayRefusal::Consumed => code::SCA_SESSION_CONSUMED,
            ReplayRefusal::RequestMismatch => code::SCA_REQUEST_MISMATCH,
            ReplayRefusal::OtpInvalid => code::SCA_OTP_INVALID,
            ReplayRefusal::OtpLocked => code::SCA_OTP_LOCKED,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ReplayRefusal::Invalid => "The SCA session token is invalid for this request",
            ReplayRefusal::Expired => "The SCA session has expired: start the action again",
            ReplayRefusal::Denied => "The user denied this action",
            ReplayRefusal::Pending => "The user has not approved this action yet",
            ReplayRefusal::Consumed => "The SCA session was already used",
            ReplayRefusal::RequestMismatch => {
                "The request differs from the one the user approved: replay it unchanged"
            }
            ReplayRefusal::OtpInvalid => "The one-time code is wrong",
            ReplayRefusal::OtpLocked => "Too many wrong codes: request a new one-time code",
        }
    }
}

/// A `428`: the action needs the user's approval first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaChallenge {
    pub code: &'static str,
    pub message: &'static str,
    /// Absent for `sms-otp` (the code itself is the proof).
    pub token: Option<crate::token::Secret>,
    pub action_type: Option<&'static str>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("missing or invalid access token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("this route does not accept that HTTP method")]
    MethodNotAllowed,
    #[error("request body is larger than the 64 KiB limit")]
    PayloadTooLarge,
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("{}", .0.message)]
    ScaRequired(ScaChallenge),
    #[error("{}", .0.message())]
    Replay(ReplayRefusal),
    #[error("at most one poll per second per SCA session")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("{message}")]
    Conflict { code: &'static str, message: &'static str },
    /// The browser's WebAuthn answer did not verify.
    #[error("{0}")]
    PasskeyRejected(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The SCA session behind an approval link or mock call is no longer
    /// waiting (decided, used or expired).
    pub fn approval_closed() -> Self {
        Error::Conflict { code: shared::error_code::APPROVAL_CLOSED, message: "This approval is no longer open" }
    }

    pub fn ceremony_not_started() -> Self {
        Error::Conflict { code: shared::error_code::CEREMONY_NOT_STARTED, message: "No passkey request is pending: start again" }
    }

    pub fn passkey_exists() -> Self {
        Error::Conflict { code: shared::error_code::PASSKEY_EXISTS, message: "You already have a passkey: approve with it" }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::token::RandomnessUnavailable> for Error {
    fn from(e: crate::token::RandomnessUnavailable) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("stored JSON is unreadable: {e}"))
    }
}
