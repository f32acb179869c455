//! The stable error codes of the API. Clients (the approval page, partner
//! integrations, the end-to-end tests) match on these, never on messages.

// 428: SCA needed.
pub const SCA_REQUIRED: &str = "sca_required";
pub const SCA_NOT_ENROLLED: &str = "sca_not_enrolled";
pub const THIRDPARTY_SMS_OTP_REQUIRED: &str = "thirdparty_sms_otp_required";

// 412: the replay's token does not allow the action.
pub const SCA_SESSION_INVALID: &str = "sca_session_invalid";
pub const SCA_SESSION_EXPIRED: &str = "sca_session_expired";
pub const SCA_SESSION_DENIED: &str = "sca_session_denied";
pub const SCA_SESSION_PENDING: &str = "sca_session_pending";
pub const SCA_SESSION_CONSUMED: &str = "sca_session_consumed";
pub const SCA_REQUEST_MISMATCH: &str = "sca_request_mismatch";
pub const SCA_OTP_INVALID: &str = "sca_otp_invalid";
pub const SCA_OTP_LOCKED: &str = "sca_otp_locked";

// Generic.
pub const UNAUTHORIZED: &str = "unauthorized";
pub const FORBIDDEN: &str = "forbidden";
pub const NOT_FOUND: &str = "not_found";
pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
pub const INVALID_JSON: &str = "invalid_json";
pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
pub const PAYLOAD_TOO_LARGE: &str = "payload_too_large";
pub const VALIDATION_FAILED: &str = "validation_failed";
pub const INVALID_2FA_PREFERENCE: &str = "invalid_2fa_preference";
pub const METHOD_NOT_AVAILABLE: &str = "method_not_available";
pub const TOO_MANY_REQUESTS: &str = "too_many_requests";
pub const REQUEST_TIMEOUT: &str = "request_timeout";
pub const UNAVAILABLE: &str = "unavailable";
pub const INTERNAL: &str = "internal_error";

// Approval page.
pub const APPROVAL_NOT_FOUND: &str = "approval_not_found";
pub const APPROVAL_CLOSED: &str = "approval_closed";
pub const PASSKEY_EXISTS: &str = "passkey_exists";
pub const NO_PASSKEY: &str = "no_passkey";
pub const CREDENTIAL_IN_USE: &str = "credential_in_use";
pub const CEREMONY_NOT_STARTED: &str = "ceremony_not_started";
pub const PASSKEY_REJECTED: &str = "passkey_rejected";
/// The password asked before a first passkey from a link (403).
pub const PASSWORD_INVALID: &str = "password_invalid";
pub const PASSWORD_LOCKED: &str = "password_locked";
pub const PASSWORD_NOT_SET: &str = "password_not_set";

// Account area.
/// Sign-in refused: the same answer for an unknown email and a wrong password (401).
pub const SIGN_IN_REFUSED: &str = "sign_in_refused";
/// Too many failed sign-ins for this account or from this client (429).
pub const SIGN_IN_SLOWED: &str = "sign_in_slowed";
/// No live browser session: never signed in, signed out, or idle 5 minutes (401).
pub const NOT_SIGNED_IN: &str = "not_signed_in";
/// The browser's session ended (five idle minutes, its age, or a sign-out
/// everywhere): the page says why (401).
pub const SESSION_ENDED: &str = "session_ended";
/// A state-changing request from another origin, or without the session's CSRF token (403).
pub const CSRF_REFUSED: &str = "csrf_refused";
/// The password was right; the second factor is still due (403).
pub const SECOND_FACTOR_REQUIRED: &str = "second_factor_required";
/// Wrong authenticator-app or recovery code (403; the message says how many tries are left).
pub const TOTP_INVALID: &str = "totp_invalid";
/// Five wrong codes in a row: the authenticator app is locked for a while (429, Retry-After).
pub const TOTP_LOCKED: &str = "totp_locked";
/// The app's code is right but was just accepted: wait for the next one
/// (409; no attempt is spent).
pub const TOTP_CODE_USED: &str = "totp_code_used";
/// The authenticator app was confirmed or removed by another tab while
/// a set-up began: start again (409).
pub const TOTP_CHANGED: &str = "totp_changed";
/// No authenticator app (or none being set up) to check a code against (409).
pub const TOTP_NOT_SET_UP: &str = "totp_not_set_up";
/// The second step of a sign-in that needs none (409).
pub const ALREADY_SIGNED_IN: &str = "already_signed_in";
/// The company forces two-factor: set up a second factor before anything else (403).
pub const SECOND_FACTOR_SETUP_REQUIRED: &str = "second_factor_setup_required";
/// Company administration is for the company's admins (403).
pub const ADMIN_ONLY: &str = "admin_only";
/// An admin does not reset their own factors: another admin does (403).
pub const OWN_FACTORS: &str = "own_factors";
/// The company forces two-factor and this is the user's last factor (409).
pub const LAST_FACTOR: &str = "last_factor";
/// Too many password checks at once on this instance (429, Retry-After).
pub const PASSWORD_CHECKS_BUSY: &str = "password_checks_busy";
/// Binding a factor needs two factors proven within the last 5 minutes:
/// the body's `step_up` says what to prove again (403).
pub const STEP_UP_REQUIRED: &str = "step_up_required";
/// A step-up code by SMS was sent less than 30 s ago (429, Retry-After).
pub const STEP_UP_CODE_TOO_SOON: &str = "step_up_code_too_soon";
/// No step-up code is waiting (none sent, expired, or burnt by five wrong
/// ones): ask for a new one (409).
pub const STEP_UP_CODE_MISSING: &str = "step_up_code_missing";
/// The user has a second factor: step up with it, not by SMS (409).
pub const STEP_UP_SMS_UNAVAILABLE: &str = "step_up_sms_unavailable";
/// Five wrong codes or link passwords in a row, across all of the user's
/// codes and links, block the user's step-up codes for a while (429,
/// Retry-After); the user is told by SMS.
pub const ATTEMPTS_BLOCKED: &str = "attempts_blocked";
/// The user has a paired phone already: unpair it first (409).
pub const PHONE_ALREADY_PAIRED: &str = "phone_already_paired";
/// The phone's device credential is missing, unknown, or its pairing
/// ended (401): pair the phone again from the account area.
pub const PHONE_NOT_PAIRED: &str = "phone_not_paired";
/// 409: the user has no paired phone to confirm on.
pub const NO_PAIRED_PHONE: &str = "no_paired_phone";
/// 409: the paired phone has not confirmed yet: wait for it.
pub const PHONE_CONFIRMATION_PENDING: &str = "phone_confirmation_pending";
/// 403: the paired phone refused.
pub const PHONE_CONFIRMATION_DENIED: &str = "phone_confirmation_denied";
/// 409: nothing asked of the phone for this (none asked, run out, used, or superseded).
pub const PHONE_CONFIRMATION_MISSING: &str = "phone_confirmation_missing";
/// 429: a confirmation was asked of the phone less than 30 s ago.
pub const PHONE_CONFIRMATION_TOO_SOON: &str = "phone_confirmation_too_soon";
// Limits (429, with Retry-After).
pub const TOO_MANY_OPEN_SESSIONS: &str = "too_many_open_sessions";
pub const SMS_RATE_LIMITED: &str = "sms_rate_limited";
pub const PARTNER_RATE_LIMITED: &str = "partner_rate_limited";
/// An approval already waits on the user's paired phone, and new ones
/// are refused rather than superseding it (`PASSGATE_LIMIT_PENDING_PUSH`).
pub const PUSH_PENDING: &str = "push_pending";

// Idempotency (422).
pub const IDEMPOTENCY_KEY_REUSED: &str = "idempotency_key_reused";

/// The codes of a `428`: the action needs an approval first.
pub const SCA_NEEDED: &[&str] = &[SCA_REQUIRED, SCA_NOT_ENROLLED, THIRDPARTY_SMS_OTP_REQUIRED];

/// The codes of a `412`: the replayed token does not allow this request.
pub const REPLAY_REFUSED: &[&str] = &[
    SCA_SESSION_INVALID,
    SCA_SESSION_EXPIRED,
    SCA_SESSION_DENIED,
    SCA_SESSION_PENDING,
    SCA_SESSION_CONSUMED,
    SCA_REQUEST_MISMATCH,
    SCA_OTP_INVALID,
    SCA_OTP_LOCKED,
];

/// Every code above, for the OpenAPI document and the tests that keep it
/// complete.
pub const ALL: &[&str] = &[
    SCA_REQUIRED,
    SCA_NOT_ENROLLED,
    THIRDPARTY_SMS_OTP_REQUIRED,
    SCA_SESSION_INVALID,
    SCA_SESSION_EXPIRED,
    SCA_SESSION_DENIED,
    SCA_SESSION_PENDING,
    SCA_SESSION_CONSUMED,
    SCA_REQUEST_MISMATCH,
    SCA_OTP_INVALID,
    SCA_OTP_LOCKED,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    INVALID_JSON,
    UNSUPPORTED_MEDIA_TYPE,
    PAYLOAD_TOO_LARGE,
    VALIDATION_FAILED,
    INVALID_2FA_PREFERENCE,
    METHOD_NOT_AVAILABLE,
    TOO_MANY_REQUESTS,
    REQUEST_TIMEOUT,
    UNAVAILABLE,
    INTERNAL,
    SIGN_IN_REFUSED,
    SIGN_IN_SLOWED,
    NOT_SIGNED_IN,
    SESSION_ENDED,
    CSRF_REFUSED,
    SECOND_FACTOR_REQUIRED,
    TOTP_INVALID,
    TOTP_LOCKED,
    TOTP_CODE_USED,
    TOTP_CHANGED,
    TOTP_NOT_SET_UP,
    ALREADY_SIGNED_IN,
    SECOND_FACTOR_SETUP_REQUIRED,
    ADMIN_ONLY,
    OWN_FACTORS,
    LAST_FACTOR,
    STEP_UP_REQUIRED,
    STEP_UP_CODE_TOO_SOON,
    STEP_UP_CODE_MISSING,
    STEP_UP_SMS_UNAVAILABLE,
    PASSWORD_CHECKS_BUSY,
    ATTEMPTS_BLOCKED,
    APPROVAL_NOT_FOUND,
    APPROVAL_CLOSED,
    PASSKEY_EXISTS,
    NO_PASSKEY,
    CREDENTIAL_IN_USE,
    CEREMONY_NOT_STARTED,
    PASSKEY_REJECTED,
    PASSWORD_INVALID,
    PASSWORD_LOCKED,
    PASSWORD_NOT_SET,
    PHONE_ALREADY_PAIRED,
    PHONE_NOT_PAIRED,
    NO_PAIRED_PHONE,
    PHONE_CONFIRMATION_PENDING,
    PHONE_CONFIRMATION_DENIED,
    PHONE_CONFIRMATION_MISSING,
    PHONE_CONFIRMATION_TOO_SOON,
    TOO_MANY_OPEN_SESSIONS,
    SMS_RATE_LIMITED,
    PARTNER_RATE_LIMITED,
    PUSH_PENDING,
    IDEMPOTENCY_KEY_REUSED,
];

/// OpenAPI schemas of a `code` field: a string with its possible values.
#[cfg(feature = "openapi")]
pub mod schema {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

    pub fn one_of(codes: &[&str], description: &str) -> Object {
        ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.iter().copied())).description(Some(description)).build()
    }

    pub fn any() -> Object {
        one_of(super::ALL, "Stable machine-readable code: match on it, never on the message.")
    }

    pub fn sca_needed() -> Object {
        one_of(super::SCA_NEEDED, "Why the action waits for the user.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_is_within_all_and_no_code_is_listed_twice() {
        let mut sorted = ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len(), "a code is listed twice");
        for code in SCA_NEEDED.iter().chain(REPLAY_REFUSED) {
            assert!(ALL.contains(code), "{code} is missing from ALL");
        }
    }

    /// A code added above but not to `ALL` would be missing from the
    /// OpenAPI document.
    #[test]
    fn every_code_defined_here_is_in_all() {
        let defined: Vec<&str> = include_str!("error_code.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub const ")?.split_once(": &str = \"")?.1.strip_suffix("\";"))
            .collect();
        assert!(defined.len() > 30, "parsed {defined:?}");
        for code in defined {
            assert!(ALL.contains(&code), "{code} is missing from ALL");
        }
    }
}
