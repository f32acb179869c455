//! The audit log's event kinds, as stored and as the activity page reads
//! them (`category.what`), and the categories its filter offers: one list
//! for the server that writes them and the page that puts them in words
//! (each side tests that no kind is left out).

pub const SESSION_CREATED: &str = "session.created";
pub const SESSION_DECIDED: &str = "session.decided";
/// The user said "this wasn't me" about an approval on their paired
/// phone: denied, and reported (visible to the company's admins).
pub const SESSION_REPORTED: &str = "session.reported";
pub const REPLAY_REFUSED: &str = "replay.refused";
pub const WEBAUTHN_FAILED: &str = "webauthn.failed";
pub const PASSKEY_ENROLLED: &str = "passkey.enrolled";
pub const LIMIT_REACHED: &str = "limit.reached";
pub const PASSWORD_REFUSED: &str = "password.refused";
pub const PASSWORD_ACCEPTED: &str = "password.accepted";
/// The password was right; a second step (or a second factor's set-up)
/// is still due: not yet signed in.
pub const PASSWORD_STEP: &str = "account.password_step";
/// The sign-in is complete: once per sign-in.
pub const SIGNED_IN: &str = "account.signed_in";
pub const SIGN_IN_REFUSED: &str = "account.sign_in_refused";
pub const SIGNED_OUT: &str = "account.signed_out";
pub const SIGNED_OUT_EVERYWHERE: &str = "account.signed_out_everywhere";
pub const FACTOR_ADDED: &str = "factor.added";
pub const FACTOR_USED: &str = "factor.used";
pub const FACTOR_REFUSED: &str = "factor.refused";
pub const FACTOR_REMOVED: &str = "factor.removed";
/// The user replaced their authenticator app (the old one stopped working).
pub const FACTOR_REPLACED: &str = "factor.replaced";
/// The user made new recovery codes (the old ones stopped working).
pub const RECOVERY_CODES_RENEWED: &str = "factor.recovery_codes_renewed";
pub const POLICY_CHANGED: &str = "company.policy_changed";
pub const DEVICE_TRUSTED: &str = "device.trusted";
pub const DEVICE_REVOKED: &str = "device.revoked";
pub const STEPPED_UP: &str = "account.stepped_up";
pub const STEP_UP_CODE_SENT: &str = "account.step_up_code_sent";

pub const ALL: &[&str] = &[
    SESSION_CREATED,
    SESSION_DECIDED,
    SESSION_REPORTED,
    REPLAY_REFUSED,
    WEBAUTHN_FAILED,
    PASSKEY_ENROLLED,
    LIMIT_REACHED,
    PASSWORD_REFUSED,
    PASSWORD_ACCEPTED,
    PASSWORD_STEP,
    SIGNED_IN,
    SIGN_IN_REFUSED,
    SIGNED_OUT,
    SIGNED_OUT_EVERYWHERE,
    FACTOR_ADDED,
    FACTOR_USED,
    FACTOR_REFUSED,
    FACTOR_REMOVED,
    FACTOR_REPLACED,
    RECOVERY_CODES_RENEWED,
    POLICY_CHANGED,
    DEVICE_TRUSTED,
    DEVICE_REVOKED,
    STEPPED_UP,
    STEP_UP_CODE_SENT,
];

/// The activity filter's categories: the part of a kind before its dot.
pub const CATEGORIES: &[&str] =
    &["account", "factor", "passkey", "device", "password", "session", "replay", "webauthn", "company", "limit"];

/// The category of `kind`.
pub fn category(kind: &str) -> &str {
    kind.split_once('.').map_or(kind, |(category, _)| category)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_and_falls_in_a_category() {
        let mut sorted = ALL.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ALL.len());
        for kind in ALL {
            assert!(CATEGORIES.contains(&category(kind)), "{kind} has no category");
        }
        for category in CATEGORIES {
            assert!(ALL.iter().any(|k| super::category(k) == *category), "{category} has no kind");
        }
    }
}
