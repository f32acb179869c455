//! The one error type of Passgate. Each variant is one answer of the
//! protocol; `http::error` maps them to status codes and JSON bodies, and is
//! the only place that does. The domain returns these without knowing HTTP.

use shared::error_code as code;

pub use crate::model::ReplayRefusal;

/// Why a password step refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordRefusal {
    /// Wrong password; this many attempts are left.
    Invalid { attempts_left: u32 },
    /// Five wrong passwords: this way is closed for the link.
    Locked,
    /// Five wrong passwords or codes in a row across the user's links and
    /// codes: none is checked for this long (`sca::failures`).
    Blocked { retry_after_secs: u64 },
    /// The user has no password yet: no second factor to pair with the link.
    NotSet,
}

impl PasswordRefusal {
    pub fn code(self) -> &'static str {
        match self {
            PasswordRefusal::Invalid { .. } => code::PASSWORD_INVALID,
            PasswordRefusal::Locked | PasswordRefusal::Blocked { .. } => code::PASSWORD_LOCKED,
            PasswordRefusal::NotSet => code::PASSWORD_NOT_SET,
        }
    }

    pub fn message(self) -> String {
        match self {
            PasswordRefusal::Invalid { attempts_left } => format!("Wrong password: {attempts_left} attempts left"),
            PasswordRefusal::Locked => "Too many wrong passwords: this link can no longer add a passkey".into(),
            PasswordRefusal::Blocked { retry_after_secs } => format!(
                "Too many wrong passwords or codes in a row: try again in {} minutes (we told you by SMS)",
                retry_after_secs.div_ceil(60)
            ),
            PasswordRefusal::NotSet => "Set a password in your account before adding a passkey from a link".into(),
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
    /// A limit refused the request: `code` says which.
    #[error("{message}")]
    TooManyRequests { code: &'static str, message: &'static str, retry_after_secs: u64 },
    /// `X-Qonto-Idempotency-Key` already served another request.
    #[error("This idempotency key was already used with another request")]
    IdempotencyKeyReused,
    #[error("{message}")]
    Conflict { code: &'static str, message: &'static str },
    /// The browser's WebAuthn answer did not verify.
    #[error("{0}")]
    PasskeyRejected(String),
    /// A password step refused (an approval link's first passkey).
    #[error("{}", .0.message())]
    Password(PasswordRefusal),
    /// Sign-in refused: an unknown email and a wrong password alike.
    #[error("Wrong email or password")]
    SignInRefused,
    /// The phone's device credential is missing, unknown, or its pairing
    /// ended.
    #[error("This phone is not paired (or no longer): pair it again from your account")]
    PhoneNotPaired,
    /// No live browser session.
    #[error("You are not signed in, or your session ended after 5 minutes without activity")]
    NotSignedIn,
    /// The browser still holds a session that ended (idle, too old, or
    /// signed out everywhere).
    #[error("You were signed out after 5 minutes without activity")]
    SessionEnded,
    /// A state-changing account request from another origin, or without
    /// its session's CSRF token.
    #[error("This request did not come from a Passgate page")]
    CsrfRefused,
    /// Signed in with the password only: the second factor is still due.
    #[error("Finish signing in with your second factor first")]
    SecondFactorRequired,
    /// The account area refuses this to this user: `code` says why.
    #[error("{message}")]
    NotAllowed { code: &'static str, message: &'static str },
    /// A wrong one-time code (authenticator app, recovery code).
    #[error("Wrong code: {attempts_left} attempts left before a lock (15 minutes, then longer each time)")]
    CodeRefused { attempts_left: u32 },
    /// Binding a factor needs two factors proven within 5 minutes: prove
    /// what this says again (see `crate::binding`).
    #[error("Confirm it's you: adding a sign-in method needs two factors proven in the last 5 minutes")]
    StepUpRequired(crate::binding::StepUp),
    /// A wrong step-up code sent by SMS.
    #[error("Wrong code: {attempts_left} attempts left, then ask for a new one")]
    StepUpCodeRefused { attempts_left: u32 },
    /// The service cannot answer now (its database is unreachable).
    #[error("{0}")]
    Unavailable(&'static str),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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

impl Error {
    /// More than one poll per second of one session.
    pub fn poll_too_soon() -> Self {
        Error::TooManyRequests {
            code: code::TOO_MANY_REQUESTS,
            message: "At most one poll per second per SCA session",
            retry_after_secs: 1,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::token::RandomnessUnavailable> for Error {
    fn from(e: crate::token::RandomnessUnavailable) -> Self {
        Error::Internal(e.to_string())
    }
}

impl From<crate::ledger::FieldError> for Error {
    fn from(e: crate::ledger::FieldError) -> Self {
        Error::Validation { field: e.field, message: e.message }
    }
}

/// Too many password checks at once on this instance: try again in a moment.
impl From<crate::password::Busy> for Error {
    fn from(_: crate::password::Busy) -> Self {
        Error::TooManyRequests {
            code: code::PASSWORD_CHECKS_BUSY,
            message: "Too many sign-ins at once: try again in a moment",
            retry_after_secs: 1,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("stored JSON is unreadable: {e}"))
    }
}
