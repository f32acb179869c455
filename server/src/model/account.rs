//! The account area's records: browser sessions (who signed in, how far,
//! when last used) and authenticator apps.

use crate::binding::Proofs;
use crate::clock::Millis;
use crate::notify::sms::OutgoingSms;
use crate::token::SecretHash;

/// How far a browser's sign-in went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The password was right; a second factor is due before anything else.
    SecondFactor,
    /// The password was right, the company forces two-factor and the user
    /// has no second factor: setting one up is all that is open.
    Enrol,
    /// Signed in.
    SignedIn,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::SecondFactor => "second_factor",
            Stage::Enrol => "enrol",
            Stage::SignedIn => "signed_in",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "second_factor" => Some(Stage::SecondFactor),
            "enrol" => Some(Stage::Enrol),
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
    /// When it last proved each factor (see `crate::binding`).
    pub proofs: Proofs,
}

/// A browser session to store: a new sign-in, or a sign-in that moved to
/// its next stage under a new secret (`replaces` is the old one's hash).
#[derive(Debug)]
pub struct NewBrowserSession<'a> {
    pub token_hash: SecretHash,
    pub user_id: &'a str,
    pub stage: Stage,
    pub replaces: Option<SecretHash>,
    pub proofs: Proofs,
    pub now: Millis,
}

/// The answer of reserving an attempt at a step-up code sent by SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepUpAttempt {
    /// Check the code against this MAC; the attempt counts as a failure
    /// until the code is accepted.
    Reserved { mac: SecretHash, failures: u32 },
    /// No code waits: none sent, expired, used, or burnt by wrong ones.
    Missing,
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

/// A company's two-factor policy (seed 001).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TwoFactorPolicy {
    /// Each user chooses.
    OptIn,
    /// Every user sets a second factor up at their next sign-in.
    Forced,
}

impl TwoFactorPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            TwoFactorPolicy::OptIn => "opt_in",
            TwoFactorPolicy::Forced => "forced",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "opt_in" => Some(TwoFactorPolicy::OptIn),
            "forced" => Some(TwoFactorPolicy::Forced),
            _ => None,
        }
    }
}

/// A company as its admins manage it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub id: String,
    pub name: String,
    pub two_factor: TwoFactorPolicy,
}

/// A passkey as its owner and their admins see it (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeySummary {
    pub id: String,
    pub user_id: String,
    pub name: Option<String>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    /// Backed up (synced) by its provider, or bound to one device.
    pub backed_up: bool,
}

/// A browser the user trusts: the password alone signs in there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedBrowser {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
    pub last_used_at: Millis,
    pub expires_at: Millis,
}

/// A browser to trust, under the hash of its cookie's secret.
#[derive(Debug)]
pub struct NewTrustedBrowser<'a> {
    pub token_hash: SecretHash,
    pub user_id: &'a str,
    pub name: &'a str,
    pub now: Millis,
    pub expires_at: Millis,
}

/// A user's authenticator app as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpFactor {
    /// The key, sealed (see `crate::sealed`).
    pub sealed_key: String,
    pub created_at: Millis,
    /// `None` while set up but not yet confirmed with a code.
    pub confirmed_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub locked_until: Option<Millis>,
    /// The newest time step whose code was accepted (-1: none yet).
    pub last_step: i64,
    /// A new app set up to replace this (confirmed) one, waiting for its
    /// first code: since when. The old one works until then.
    pub replacing_since: Option<Millis>,
}

/// Which failure counter of an authenticator app an attempt takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCounter {
    /// A code of an app being set up.
    Pending,
    /// A code of a confirmed app.
    App,
    /// A code of the app set up to replace the confirmed one (its
    /// failures count with the confirmed app's: one budget of guesses).
    Replacement,
    /// A recovery code: a counter of its own, so that guesses at the
    /// app's codes cannot keep the recovery codes locked.
    RecoveryCodes,
}

impl TotpCounter {
    /// Whether the app must be confirmed for this counter.
    pub fn confirmed(self) -> bool {
        self != TotpCounter::Pending
    }

    /// The column of the key this counter's codes are checked against.
    pub fn key_column(self) -> &'static str {
        match self {
            TotpCounter::Replacement => "next_key",
            TotpCounter::Pending | TotpCounter::App | TotpCounter::RecoveryCodes => "sealed_key",
        }
    }

    /// The counter's columns: failures, and the lock's end.
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            TotpCounter::Pending | TotpCounter::App | TotpCounter::Replacement => ("failures", "locked_until"),
            TotpCounter::RecoveryCodes => ("recovery_failures", "recovery_locked_until"),
        }
    }
}

/// The lock of the failure that is the `failures`th since the last
/// accepted code: none unless it is a multiple of `max`; then `lock_ms`,
/// doubled at each lock of the series, at most 64 times. (Storage writes
/// the same rule in SQL; the domain reads it to tell the user.)
pub fn lock_after(failures: u32, max: u32, lock_ms: i64) -> Option<i64> {
    if max == 0 || failures == 0 || !failures.is_multiple_of(max) {
        return None;
    }
    Some(lock_ms << (failures / max - 1).min(6))
}

/// The answer of reserving an attempt at an authenticator-app code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TotpAttempt {
    /// Check the code with this key; the attempt counts as a failure
    /// until a code is accepted.
    Reserved { sealed_key: String, failures: u32 },
    /// Too many wrong codes in a row: no attempt before `until`.
    Locked { until: Millis },
    /// No such app (confirmed, or pending, as asked).
    Absent,
}

/// The answer of reserving an attempt at any of a user's one-time codes
/// or approval-link passwords (failures per user, not per code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAttempt {
    /// Check it; it counts as a failure until one is right. `failures`:
    /// those since the last right one, this one counted.
    Reserved { failures: u32 },
    /// Too many failures in a row: no attempt before `until`.
    Blocked { until: Millis },
}

/// An accepted code: its step becomes the last accepted one.
#[derive(Debug)]
pub struct TotpAcceptance<'a> {
    pub user_id: &'a str,
    /// The key the code was checked against: accepted only if it is still
    /// the app's (a set-up begun meanwhile replaced it: refused).
    pub sealed_key: &'a str,
    pub step: i64,
    pub now: Millis,
    /// Confirming a pending app: these recovery codes (hashes) replace any
    /// earlier ones. `None`: a code of a confirmed app.
    pub confirming: Option<&'a [SecretHash]>,
    /// Confirming: the SMS that tells the user an app was added.
    pub notice: Option<&'a OutgoingSms>,
    /// Confirming the app that replaces the confirmed one
    /// ([`TotpCounter::Replacement`]): `sealed_key` is the new key, which
    /// takes the old one's place.
    pub replacing: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fifth_failure_locks_for_twice_as_long_as_the_one_before() {
        let locks: Vec<Option<i64>> = (1..=10).map(|n| lock_after(n, 5, 15)).collect();
        assert_eq!(locks, vec![None, None, None, None, Some(15), None, None, None, None, Some(30)]);
        assert_eq!(lock_after(15, 5, 15), Some(60));
        assert_eq!(lock_after(500, 5, 15), Some(15 * 64), "at most 64 times the first");
        assert_eq!(lock_after(0, 5, 15), None);
    }

    #[test]
    fn a_session_is_over_after_its_idle_time_or_its_maximum_age() {
        let session = BrowserSession {
            user_id: "u".into(),
            stage: Stage::SignedIn,
            created_at: Millis(0),
            last_seen_at: Millis(1_000),
            proofs: Proofs::default(),
        };
        let at = |now| Liveness { now: Millis(now), idle_ms: 300, max_age_ms: 2_000 };
        assert!(at(1_299).admits(&session));
        assert!(!at(1_300).admits(&session));
        let busy = BrowserSession { last_seen_at: Millis(1_999), ..session };
        assert!(at(1_999).admits(&busy));
        assert!(!at(2_000).admits(&busy));
        for stage in [Stage::SecondFactor, Stage::Enrol, Stage::SignedIn] {
            assert_eq!(Stage::parse(stage.as_str()), Some(stage));
        }
    }
}
