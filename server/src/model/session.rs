//! The SCA session state machine.
//!
//! ```text
//!   waiting ──allow──▶ allow ──replay──▶ consumed
//!      │
//!      └────deny───▶ deny
//! ```
//! A session lives 15 minutes from creation; past that it reads `deny` to
//! the poller and `expired` to a replay, whatever its stored state, except a
//! consumed one, which stays consumed. Transitions are applied in storage
//! with compare-and-set updates, so two processes never both win one.

use shared::{error_code, ActionSummary, ApprovalState, ScaResult};

use super::{Fingerprint, Method, Owner};
use crate::clock::Millis;

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
    /// Five wrong codes in a row across the user's codes: none is checked
    /// for a while (`sca::failures`).
    UserBlocked,
}

impl ReplayRefusal {
    pub fn code(self) -> &'static str {
        match self {
            ReplayRefusal::Invalid => error_code::SCA_SESSION_INVALID,
            ReplayRefusal::Expired => error_code::SCA_SESSION_EXPIRED,
            ReplayRefusal::Denied => error_code::SCA_SESSION_DENIED,
            ReplayRefusal::Pending => error_code::SCA_SESSION_PENDING,
            ReplayRefusal::Consumed => error_code::SCA_SESSION_CONSUMED,
            ReplayRefusal::RequestMismatch => error_code::SCA_REQUEST_MISMATCH,
            ReplayRefusal::OtpInvalid => error_code::SCA_OTP_INVALID,
            ReplayRefusal::OtpLocked | ReplayRefusal::UserBlocked => error_code::SCA_OTP_LOCKED,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ReplayRefusal::Invalid => "The SCA session token is invalid for this request",
            ReplayRefusal::Expired => "The SCA session has expired: start the action again",
            ReplayRefusal::Denied => "The user denied this action",
            ReplayRefusal::Pending => "The user has not approved this action yet",
            ReplayRefusal::Consumed => "The SCA session was already used",
            ReplayRefusal::RequestMismatch => "The request differs from the one the user approved: replay it unchanged",
            ReplayRefusal::OtpInvalid => "The one-time code is wrong, used or replaced by a newer one",
            ReplayRefusal::OtpLocked => "Too many wrong codes: request a new one-time code",
            ReplayRefusal::UserBlocked => {
                "Too many wrong codes in a row for this user: no code is accepted for a while (the user was told by SMS)"
            }
        }
    }
}

/// How long the partner and the user have, from the 428 on.
pub const SESSION_LIFETIME_MS: i64 = 15 * Millis::MINUTE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Waiting,
    Allow,
    Deny,
    Consumed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Allow => "allow",
            State::Deny => "deny",
            State::Consumed => "consumed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "waiting" => Some(State::Waiting),
            "allow" => Some(State::Allow),
            "deny" => Some(State::Deny),
            "consumed" => Some(State::Consumed),
            _ => None,
        }
    }
}

/// The user's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn target(self) -> State {
        match self {
            Decision::Allow => State::Allow,
            Decision::Deny => State::Deny,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub owner: Owner,
    pub method: Method,
    pub action_type: String,
    pub fingerprint: Fingerprint,
    pub summary: ActionSummary,
    pub state: State,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub decided_at: Option<Millis>,
}

/// The session can no longer be decided (already decided, or ran out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Session {
    pub fn is_expired(&self, now: Millis) -> bool {
        now >= self.expires_at
    }

    /// What polling answers: the result and, for `deny`, when it was denied
    /// or ran out.
    pub fn poll(&self, now: Millis) -> (ScaResult, Option<Millis>) {
        match self.state {
            State::Deny => (ScaResult::Deny, self.decided_at.or(Some(self.expires_at))),
            State::Consumed => (ScaResult::Allow, None),
            _ if self.is_expired(now) => (ScaResult::Deny, Some(self.expires_at)),
            State::Waiting => (ScaResult::Waiting, None),
            State::Allow => (ScaResult::Allow, None),
        }
    }

    /// The state the user's decision moves the session to, if it may.
    pub fn decide(&self, decision: Decision, now: Millis) -> Result<State, Closed> {
        if self.state == State::Waiting && !self.is_expired(now) {
            Ok(decision.target())
        } else {
            Err(Closed)
        }
    }

    /// Why a replay by `caller` of the request `fingerprint` may not run the
    /// action, or `None` when it may (the session is allowed and fresh).
    pub fn replay_refusal(&self, caller: &Owner, fingerprint: &Fingerprint, now: Millis) -> Option<ReplayRefusal> {
        if &self.owner != caller {
            return Some(ReplayRefusal::Invalid);
        }
        if &self.fingerprint != fingerprint {
            return Some(ReplayRefusal::RequestMismatch);
        }
        match self.state {
            State::Consumed => Some(ReplayRefusal::Consumed),
            State::Deny => Some(ReplayRefusal::Denied),
            _ if self.is_expired(now) => Some(ReplayRefusal::Expired),
            State::Waiting => Some(ReplayRefusal::Pending),
            State::Allow => None,
        }
    }

    /// Where the approval stands for the user on the approval page.
    pub fn approval_state(&self, now: Millis) -> ApprovalState {
        match self.state {
            State::Consumed => ApprovalState::Used,
            State::Deny => ApprovalState::Denied,
            _ if self.is_expired(now) => ApprovalState::Expired,
            State::Waiting => ApprovalState::Waiting,
            State::Allow => ApprovalState::Allowed,
        }
    }

    pub fn seconds_left(&self, now: Millis) -> u64 {
        u64::try_from((self.expires_at.0 - now.0).max(0) / Millis::SECOND).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RequestParts;

    const T0: Millis = Millis(1_800_000_000_000);

    fn owner(partner: &str) -> Owner {
        Owner { partner_id: partner.into(), user_id: "user-1".into() }
    }

    fn fingerprint(body: &str) -> Fingerprint {
        Fingerprint::of(&RequestParts {
            method: "POST",
            path: "/v2/sepa/transfers",
            query: None,
            preference: Some(b"passkey"),
            body: body.as_bytes(),
        })
    }

    fn session(state: State) -> Session {
        Session {
            id: "s".into(),
            owner: owner("p1"),
            method: Method::Passkey,
            action_type: "transfer.single.create".into(),
            fingerprint: fingerprint("{}"),
            summary: ActionSummary {
                action_type: "transfer.single.create".into(),
                amount: None,
                currency: None,
                payee_name: "A".into(),
                iban: "B".into(),
                reference: None,
            },
            state,
            created_at: T0,
            expires_at: T0.plus_millis(SESSION_LIFETIME_MS),
            decided_at: None,
        }
    }

    #[test]
    fn a_waiting_session_may_be_allowed_or_denied_until_it_expires() {
        let s = session(State::Waiting);
        assert_eq!(s.decide(Decision::Allow, T0), Ok(State::Allow));
        assert_eq!(s.decide(Decision::Deny, T0), Ok(State::Deny));
        let last_moment = T0.plus_millis(SESSION_LIFETIME_MS - 1);
        assert_eq!(s.decide(Decision::Allow, last_moment), Ok(State::Allow));
        assert_eq!(s.decide(Decision::Allow, T0.plus_millis(SESSION_LIFETIME_MS)), Err(Closed));
    }

    #[test]
    fn a_decided_session_cannot_be_decided_again() {
        for state in [State::Allow, State::Deny, State::Consumed] {
            assert_eq!(session(state).decide(Decision::Allow, T0), Err(Closed), "{state:?}");
            assert_eq!(session(state).decide(Decision::Deny, T0), Err(Closed), "{state:?}");
        }
    }

    #[test]
    fn polling_reads_each_state_and_expiry_reads_deny_with_the_time() {
        assert_eq!(session(State::Waiting).poll(T0), (ScaResult::Waiting, None));
        assert_eq!(session(State::Allow).poll(T0), (ScaResult::Allow, None));
        let mut denied = session(State::Deny);
        denied.decided_at = Some(T0.plus_millis(5));
        assert_eq!(denied.poll(T0), (ScaResult::Deny, Some(T0.plus_millis(5))));
        let later = T0.plus_millis(SESSION_LIFETIME_MS);
        let expiry = Some(T0.plus_millis(SESSION_LIFETIME_MS));
        assert_eq!(session(State::Waiting).poll(later), (ScaResult::Deny, expiry));
        assert_eq!(session(State::Allow).poll(later), (ScaResult::Deny, expiry));
    }

    #[test]
    fn only_an_allowed_fresh_session_of_the_same_owner_and_request_may_be_replayed() {
        let fp = fingerprint("{}");
        assert_eq!(session(State::Allow).replay_refusal(&owner("p1"), &fp, T0), None);
        assert_eq!(session(State::Allow).replay_refusal(&owner("p2"), &fp, T0), Some(ReplayRefusal::Invalid));
        assert_eq!(session(State::Allow).replay_refusal(&owner("p1"), &fingerprint("{ }"), T0), Some(ReplayRefusal::RequestMismatch));
        assert_eq!(session(State::Waiting).replay_refusal(&owner("p1"), &fp, T0), Some(ReplayRefusal::Pending));
        assert_eq!(session(State::Deny).replay_refusal(&owner("p1"), &fp, T0), Some(ReplayRefusal::Denied));
        assert_eq!(session(State::Consumed).replay_refusal(&owner("p1"), &fp, T0), Some(ReplayRefusal::Consumed));
        let later = T0.plus_millis(SESSION_LIFETIME_MS);
        assert_eq!(session(State::Allow).replay_refusal(&owner("p1"), &fp, later), Some(ReplayRefusal::Expired));
        assert_eq!(session(State::Waiting).replay_refusal(&owner("p1"), &fp, later), Some(ReplayRefusal::Expired));
    }

    #[test]
    fn the_approval_page_sees_used_denied_expired_waiting_allowed() {
        let later = T0.plus_millis(SESSION_LIFETIME_MS);
        assert_eq!(session(State::Waiting).approval_state(T0), ApprovalState::Waiting);
        assert_eq!(session(State::Allow).approval_state(T0), ApprovalState::Allowed);
        assert_eq!(session(State::Deny).approval_state(T0), ApprovalState::Denied);
        assert_eq!(session(State::Consumed).approval_state(later), ApprovalState::Used);
        assert_eq!(session(State::Waiting).approval_state(later), ApprovalState::Expired);
        assert_eq!(session(State::Waiting).seconds_left(T0), 900);
        assert_eq!(session(State::Waiting).seconds_left(later.plus_millis(10)), 0);
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for state in [State::Waiting, State::Allow, State::Deny, State::Consumed] {
            assert_eq!(State::parse(state.as_str()), Some(state));
        }
        assert_eq!(State::parse("allowed"), None);
    }
}
