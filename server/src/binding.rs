//! Binding a factor is itself strong customer authentication (PSD2 RTS
//! art. 24(2)(b)): the one rule every way of binding one goes through — a
//! passkey or an authenticator app added from the account area, the first
//! passkey from an approval link, and next the paired phone.
//!
//! The rule: the user proved two factors within the last
//! [`FRESH_MS`]. Knowledge is the password; possession is an existing
//! second factor (an authenticator app's code, a passkey) or, for a user
//! who has none yet, the registered phone (a code sent by SMS, or the
//! approval link it received). A passkey with user verification proves
//! both at once. A trusted browser proves nothing: a session it opened
//! has the password only, and is asked again (a step-up), as is one whose
//! proofs are older than five minutes. Never refused silently: the answer
//! says what to prove and how.
//!
//! One binding has a way of its own: a user who lost their authenticator
//! app replaces it with the password and a code sent by SMS to the
//! registered phone. That proof of the phone ([`Proofs::phone_at`]) admits
//! replacing the app ([`Purpose::ReplaceApp`]) and nothing else: it binds
//! no passkey, and renews no recovery codes.
//!
//! Pairing a phone ([`Purpose::PairPhone`]) always takes a code sent by
//! SMS to the registered phone (seed 000), whatever factors the user
//! has: that code is its possession; the other factor is knowledge — the
//! password, or a passkey with user verification (which proves it too).
//! An authenticator app's code, itself possession, is not the second
//! factor of a pairing: two proofs of possession would be one category.

use crate::clock::Millis;

/// How long a proof counts towards binding a factor.
pub const FRESH_MS: i64 = 5 * Millis::MINUTE;

/// When a browser session last proved each factor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Proofs {
    /// The password.
    pub knowledge_at: Option<Millis>,
    /// A second factor, or the registered phone of a user without one.
    pub possession_at: Option<Millis>,
    /// The registered phone (a code by SMS) of a user who has a second
    /// factor: counts only towards replacing a lost authenticator app.
    pub phone_at: Option<Millis>,
}

/// What a binding is for (the step-up endpoints' `?for=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// Binding a factor (a passkey, a first authenticator app), renewing
    /// recovery codes: the password and an existing factor.
    #[default]
    Bind,
    /// Replacing the authenticator app: the same, or, the old app being
    /// lost, the password and the registered phone.
    ReplaceApp,
    /// Pairing a phone: the password (or a passkey) and a code sent by
    /// SMS to the registered phone.
    PairPhone,
}

impl Proofs {
    /// The password alone (a sign-in without a second step, or through a
    /// trusted browser).
    pub fn password(at: Millis) -> Self {
        Proofs { knowledge_at: Some(at), possession_at: None, phone_at: None }
    }

    /// Both factors (a passkey with user verification; the password then a
    /// code).
    pub fn both(at: Millis) -> Self {
        Proofs { knowledge_at: Some(at), possession_at: Some(at), phone_at: None }
    }

    /// These proofs, and possession proven at `at`.
    pub fn with_possession(self, at: Millis) -> Self {
        Proofs { possession_at: Some(at), ..self }
    }

    /// These proofs, and the registered phone proven at `at`.
    pub fn with_phone(self, at: Millis) -> Self {
        Proofs { phone_at: Some(at), ..self }
    }

    /// What is still to prove at `now` before a binding for `purpose`.
    pub fn due(&self, now: Millis, purpose: Purpose) -> Due {
        let fresh = |at: Option<Millis>| at.is_some_and(|at| at.0 > now.0 - FRESH_MS && at.0 <= now.0);
        if purpose == Purpose::PairPhone {
            return Due { knowledge: !fresh(self.knowledge_at), possession: !fresh(self.phone_at) };
        }
        let possession = fresh(self.possession_at) || (purpose == Purpose::ReplaceApp && fresh(self.phone_at));
        Due { knowledge: !fresh(self.knowledge_at), possession: !possession }
    }
}

/// The factors a binding still waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub knowledge: bool,
    pub possession: bool,
}

impl Due {
    pub fn nothing(self) -> bool {
        !self.knowledge && !self.possession
    }
}

/// A way to prove possession again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// A passkey with user verification: both factors at once.
    Passkey,
    /// A code of the user's authenticator app.
    Totp,
    /// A code sent by SMS to the registered phone: for a user with no
    /// second factor, or one replacing the authenticator app they lost.
    Sms,
}

impl Way {
    pub fn as_str(self) -> &'static str {
        match self {
            Way::Passkey => "passkey",
            Way::Totp => "totp",
            Way::Sms => "sms",
        }
    }

    /// The ways open to a user with these second factors, for `purpose`.
    pub fn open_to(has_totp: bool, has_passkey: bool, purpose: Purpose) -> Vec<Way> {
        if purpose == Purpose::PairPhone {
            return vec![Way::Sms];
        }
        let mut ways = Vec::new();
        if has_passkey {
            ways.push(Way::Passkey);
        }
        if has_totp {
            ways.push(Way::Totp);
        }
        if ways.is_empty() || (has_totp && purpose == Purpose::ReplaceApp) {
            ways.push(Way::Sms);
        }
        ways
    }
}

/// What a session must prove again, as the page is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUp {
    pub password: bool,
    /// Empty when possession is fresh.
    pub ways: Vec<Way>,
}

impl StepUp {
    /// The step-up of `due` for a user whose possession ways are `ways`;
    /// `None` when nothing is due.
    pub fn of(due: Due, ways: Vec<Way>) -> Option<StepUp> {
        if due.nothing() {
            return None;
        }
        Some(StepUp { password: due.knowledge, ways: if due.possession { ways } else { Vec::new() } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(10 * 60 * 1_000);

    #[test]
    fn two_factors_proven_within_five_minutes_admit_a_binding() {
        assert!(Proofs::both(NOW).due(NOW, Purpose::Bind).nothing());
        assert!(Proofs::both(NOW.plus_millis(-FRESH_MS + 1)).due(NOW, Purpose::Bind).nothing());
        let stale = Proofs::both(NOW.plus_millis(-FRESH_MS)).due(NOW, Purpose::Bind);
        assert_eq!(stale, Due { knowledge: true, possession: true });
    }

    #[test]
    fn the_password_alone_is_asked_for_possession() {
        let due = Proofs::password(NOW).due(NOW, Purpose::Bind);
        assert_eq!(due, Due { knowledge: false, possession: true });
        assert_eq!(StepUp::of(due, vec![Way::Sms]), Some(StepUp { password: false, ways: vec![Way::Sms] }));
    }

    #[test]
    fn each_proof_ages_on_its_own() {
        let proofs = Proofs::password(NOW.plus_millis(-FRESH_MS - 1)).with_possession(NOW);
        assert_eq!(proofs.due(NOW, Purpose::Bind), Due { knowledge: true, possession: false });
        let step_up = StepUp::of(proofs.due(NOW, Purpose::Bind), vec![Way::Totp]).unwrap();
        assert!(step_up.password);
        assert!(step_up.ways.is_empty(), "possession is fresh: only the password is asked");
    }

    #[test]
    fn a_proof_from_the_future_does_not_count() {
        assert!(!Proofs::both(NOW.plus_millis(1)).due(NOW, Purpose::Bind).nothing());
        assert!(!Proofs::default().due(NOW, Purpose::Bind).nothing());
    }

    #[test]
    fn sms_is_the_way_only_of_a_user_without_a_second_factor() {
        assert_eq!(Way::open_to(false, false, Purpose::Bind), vec![Way::Sms]);
        assert_eq!(Way::open_to(true, false, Purpose::Bind), vec![Way::Totp]);
        assert_eq!(Way::open_to(true, true, Purpose::Bind), vec![Way::Passkey, Way::Totp]);
    }

    #[test]
    fn the_phone_admits_replacing_the_app_and_nothing_else() {
        let proofs = Proofs::password(NOW).with_phone(NOW);
        assert!(proofs.due(NOW, Purpose::ReplaceApp).nothing());
        assert_eq!(proofs.due(NOW, Purpose::Bind), Due { knowledge: false, possession: true }, "no passkey bound with it");
        let stale = Proofs::password(NOW).with_phone(NOW.plus_millis(-FRESH_MS));
        assert!(!stale.due(NOW, Purpose::ReplaceApp).nothing());
    }

    #[test]
    fn a_phone_is_paired_with_the_password_and_a_code_by_sms_only() {
        assert_eq!(Way::open_to(true, true, Purpose::PairPhone), vec![Way::Sms], "the code by SMS, whatever the factors");
        assert!(Proofs::password(NOW).with_phone(NOW).due(NOW, Purpose::PairPhone).nothing());
        assert!(Proofs::both(NOW).with_phone(NOW).due(NOW, Purpose::PairPhone).nothing(), "a passkey proves knowledge too");
        let app_only = Proofs::default().with_possession(NOW).with_phone(NOW);
        assert_eq!(app_only.due(NOW, Purpose::PairPhone), Due { knowledge: true, possession: false }, "two possessions");
        assert_eq!(Proofs::both(NOW).due(NOW, Purpose::PairPhone), Due { knowledge: false, possession: true }, "no code yet");
        let stale = Proofs::password(NOW).with_phone(NOW.plus_millis(-FRESH_MS));
        assert_eq!(stale.due(NOW, Purpose::PairPhone), Due { knowledge: false, possession: true });
    }

    #[test]
    fn a_user_who_lost_their_app_may_prove_the_phone_only_to_replace_it() {
        assert_eq!(Way::open_to(true, false, Purpose::ReplaceApp), vec![Way::Totp, Way::Sms]);
        assert_eq!(Way::open_to(true, true, Purpose::ReplaceApp), vec![Way::Passkey, Way::Totp, Way::Sms]);
        assert_eq!(Way::open_to(false, true, Purpose::ReplaceApp), vec![Way::Passkey], "no app to have lost");
        assert_eq!(Way::open_to(false, false, Purpose::ReplaceApp), vec![Way::Sms]);
    }
}
