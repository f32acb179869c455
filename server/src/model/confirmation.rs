//! What the paired phone confirms for the account area (seed 000): a
//! sign-in on another browser, as a second factor, or pairing a new phone
//! in its place. One browser session asks; the phone decides with its
//! passkey; the asking session uses an allowed one once.

use crate::clock::Millis;

/// What a confirmation lets the asking browser session do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationPurpose {
    /// Finish signing in (the second step).
    SignIn,
    /// Pair another phone in place of this one.
    ReplacePhone,
}

impl ConfirmationPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationPurpose::SignIn => "sign_in",
            ConfirmationPurpose::ReplacePhone => "replace_phone",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "sign_in" => Some(ConfirmationPurpose::SignIn),
            "replace_phone" => Some(ConfirmationPurpose::ReplacePhone),
            _ => None,
        }
    }
}

/// Where a confirmation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationState {
    /// On the phone, undecided.
    Waiting,
    /// The phone approved it; the asking session may use it once.
    Allowed,
    /// The phone refused it: final.
    Denied,
    /// A newer request of the user's took its place.
    Canceled,
    /// The asking session used it.
    Used,
}

impl ConfirmationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationState::Waiting => "waiting",
            ConfirmationState::Allowed => "allowed",
            ConfirmationState::Denied => "denied",
            ConfirmationState::Canceled => "canceled",
            ConfirmationState::Used => "used",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "waiting" => Some(ConfirmationState::Waiting),
            "allowed" => Some(ConfirmationState::Allowed),
            "denied" => Some(ConfirmationState::Denied),
            "canceled" => Some(ConfirmationState::Canceled),
            "used" => Some(ConfirmationState::Used),
            _ => None,
        }
    }
}

/// A confirmation, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneConfirmation {
    pub id: String,
    pub user_id: String,
    pub phone_id: String,
    pub purpose: ConfirmationPurpose,
    /// The asking browser's address and name ("Firefox on Linux").
    pub from_ip: Option<String>,
    pub from_browser: String,
    pub state: ConfirmationState,
    pub created_at: Millis,
    pub expires_at: Millis,
}

impl PhoneConfirmation {
    /// Its state at `now`: one still waiting, or allowed and unused, past
    /// its end is as good as canceled.
    pub fn state_at(&self, now: Millis) -> ConfirmationState {
        match self.state {
            ConfirmationState::Waiting | ConfirmationState::Allowed if now >= self.expires_at => ConfirmationState::Canceled,
            state => state,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for purpose in [ConfirmationPurpose::SignIn, ConfirmationPurpose::ReplacePhone] {
            assert_eq!(ConfirmationPurpose::parse(purpose.as_str()), Some(purpose));
        }
        use ConfirmationState::*;
        for state in [Waiting, Allowed, Denied, Canceled, Used] {
            assert_eq!(ConfirmationState::parse(state.as_str()), Some(state));
        }
        assert_eq!(ConfirmationState::parse("allow"), None);
    }

    #[test]
    fn a_confirmation_past_its_end_is_canceled_unless_decided() {
        let mut c = PhoneConfirmation {
            id: "c".into(),
            user_id: "u".into(),
            phone_id: "p".into(),
            purpose: ConfirmationPurpose::SignIn,
            from_ip: None,
            from_browser: "Firefox".into(),
            state: ConfirmationState::Allowed,
            created_at: Millis(0),
            expires_at: Millis(10),
        };
        assert_eq!(c.state_at(Millis(9)), ConfirmationState::Allowed);
        assert_eq!(c.state_at(Millis(10)), ConfirmationState::Canceled);
        c.state = ConfirmationState::Denied;
        assert_eq!(c.state_at(Millis(10)), ConfirmationState::Denied);
    }
}
