//! The account area's browser sessions: who signed in, how far, and when
//! the session was last used.

use crate::clock::Millis;
use crate::token::SecretHash;

/// How far a browser's sign-in went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; a second factor is due before anything else.
    SecondFactor,
    /// Signed in.
    SignedIn,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::SignedIn => "signed_in",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "second_factor" => Some(Stage::SecondFactor),
            "signed_in" => Some(Stage::SignedIn),
            _ => None,
        }
    }
}

/// A browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub user_id: String,
    pub stage: Stage,
    pub created_at: Millis,
    pub last_seen_at: Millis,
}

/// A browser session to store: a new sign-in, or a sign-in that moved to
/// its next stage under a new secret (`replaces` is the old one's hash).
#[derive(Debug)]
pub struct NewBrowserSession<'a> {
    pub token_hash: SecretHash,
    pub user_id: &'a str,
    pub stage: Stage,
    pub replaces: Option<SecretHash>,
    pub now: Millis,
}

/// When a browser session is over: idle for `idle_ms`, or older than
/// `max_age_ms`, at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    pub now: Millis,
    pub idle_ms: i64,
    pub max_age_ms: i64,
}

impl Liveness {
    /// Sessions last seen at or before this are over.
    pub fn idle_cutoff(&self) -> i64 {
        self.now.0 - self.idle_ms
    }

    /// Sessions created at or before this are over.
    pub fn age_cutoff(&self) -> i64 {
        self.now.0 - self.max_age_ms
    }

    pub fn admits(&self, session: &BrowserSession) -> bool {
        session.last_seen_at.0 > self.idle_cutoff() && session.created_at.0 > self.age_cutoff()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_over_after_its_idle_time_or_its_maximum_age() {
        let session = BrowserSession { user_id: "u".into(), stage: Stage::SignedIn, created_at: Millis(0), last_seen_at: Millis(1_000) };
        let at = |now| Liveness { now: Millis(now), idle_ms: 300, max_age_ms: 2_000 };
        assert!(at(1_299).admits(&session));
        assert!(!at(1_300).admits(&session));
        let busy = BrowserSession { last_seen_at: Millis(1_999), ..session };
        assert!(at(1_999).admits(&busy));
        assert!(!at(2_000).admits(&busy));
        for stage in [Stage::SecondFactor, Stage::SignedIn] {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
    }
}
