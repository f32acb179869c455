//! Security events for the append-only audit log (PSD2: the bank carries
//! the burden of proof). An event names who, what and when; it never holds
//! a secret (token, link, code) nor a phone number.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::{Method, Owner, Session};
use crate::clock::Millis;

/// Longest user agent kept; the rest is cut.
const USER_AGENT_MAX: usize = 256;

/// Where a request came from, as far as the server can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent.map(|ua| ua.chars().filter(|c| !c.is_control()).take(USER_AGENT_MAX).collect());
        ClientInfo { ip, user_agent }
    }

    /// What a per-client rate limit counts this client under: an IPv4
    /// address, or an IPv6 address's /64 (its owner has the whole /64 to
    /// pick from); `unknown` without an address.
    pub fn rate_key(&self) -> String {
        match self.ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => format!("{}/64", std::net::Ipv6Addr::from(u128::from(ip) & (u128::MAX << 64))),
            None => "unknown".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditKind {
    SessionCreated,
    SessionDecided,
    /// "This wasn't me" on the paired phone: denied and reported.
    SessionReported,
    ReplayRefused,
    WebauthnFailed,
    PasskeyEnrolled,
    LimitReached,
    PasswordRefused,
    PasswordAccepted,
    /// The account's password was right; a second step (or a second
    /// factor's set-up) is still due.
    PasswordStep,
    /// A sign-in completed (once per sign-in).
    SignedIn,
    SignInRefused,
    SignedOut,
    SignedOutEverywhere,
    FactorAdded,
    FactorUsed,
    FactorRefused,
    FactorRemoved,
    /// The user replaced their authenticator app.
    FactorReplaced,
    /// The user made new recovery codes.
    RecoveryCodesRenewed,
    PolicyChanged,
    DeviceTrusted,
    DeviceRevoked,
    SteppedUp,
    StepUpCodeSent,
}

impl AuditKind {
    pub const ALL: [AuditKind; 25] = [
        AuditKind::SessionCreated,
        AuditKind::SessionDecided,
        AuditKind::SessionReported,
        AuditKind::ReplayRefused,
        AuditKind::WebauthnFailed,
        AuditKind::PasskeyEnrolled,
        AuditKind::LimitReached,
        AuditKind::PasswordRefused,
        AuditKind::PasswordAccepted,
        AuditKind::PasswordStep,
        AuditKind::SignedIn,
        AuditKind::SignInRefused,
        AuditKind::SignedOut,
        AuditKind::SignedOutEverywhere,
        AuditKind::FactorAdded,
        AuditKind::FactorUsed,
        AuditKind::FactorRefused,
        AuditKind::FactorRemoved,
        AuditKind::FactorReplaced,
        AuditKind::RecoveryCodesRenewed,
        AuditKind::PolicyChanged,
        AuditKind::DeviceTrusted,
        AuditKind::DeviceRevoked,
        AuditKind::SteppedUp,
        AuditKind::StepUpCodeSent,
    ];

    /// As stored (`shared::audit_kind`, which the activity page reads).
    pub fn as_str(self) -> &'static str {
        use shared::audit_kind as kind;
        match self {
            AuditKind::SessionCreated => kind::SESSION_CREATED,
            AuditKind::SessionDecided => kind::SESSION_DECIDED,
            AuditKind::SessionReported => kind::SESSION_REPORTED,
            AuditKind::ReplayRefused => kind::REPLAY_REFUSED,
            AuditKind::WebauthnFailed => kind::WEBAUTHN_FAILED,
            AuditKind::PasskeyEnrolled => kind::PASSKEY_ENROLLED,
            AuditKind::LimitReached => kind::LIMIT_REACHED,
            AuditKind::PasswordRefused => kind::PASSWORD_REFUSED,
            AuditKind::PasswordAccepted => kind::PASSWORD_ACCEPTED,
            AuditKind::PasswordStep => kind::PASSWORD_STEP,
            AuditKind::SignedIn => kind::SIGNED_IN,
            AuditKind::SignInRefused => kind::SIGN_IN_REFUSED,
            AuditKind::SignedOut => kind::SIGNED_OUT,
            AuditKind::SignedOutEverywhere => kind::SIGNED_OUT_EVERYWHERE,
            AuditKind::FactorAdded => kind::FACTOR_ADDED,
            AuditKind::FactorUsed => kind::FACTOR_USED,
            AuditKind::FactorRefused => kind::FACTOR_REFUSED,
            AuditKind::FactorRemoved => kind::FACTOR_REMOVED,
            AuditKind::FactorReplaced => kind::FACTOR_REPLACED,
            AuditKind::RecoveryCodesRenewed => kind::RECOVERY_CODES_RENEWED,
            AuditKind::PolicyChanged => kind::POLICY_CHANGED,
            AuditKind::DeviceTrusted => kind::DEVICE_TRUSTED,
            AuditKind::DeviceRevoked => kind::DEVICE_REVOKED,
            AuditKind::SteppedUp => kind::STEPPED_UP,
            AuditKind::StepUpCodeSent => kind::STEP_UP_CODE_SENT,
        }
    }
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub at: Millis,
    pub partner_id: Option<String>,
    pub user_id: Option<String>,
    /// Filled in by storage for a session it creates.
    pub session_id: Option<String>,
    pub detail: Value,
    pub client: ClientInfo,
}

impl AuditEvent {
    fn about(kind: AuditKind, owner: &Owner, session_id: Option<&str>, detail: Value, client: &ClientInfo, at: Millis) -> Self {
        AuditEvent {
            kind,
            at,
            partner_id: Some(owner.partner_id.clone()),
            user_id: Some(owner.user_id.clone()),
            session_id: session_id.map(str::to_owned),
            detail,
            client: client.clone(),
        }
    }

    pub fn session_created(owner: &Owner, action_type: &str, method: Method, client: &ClientInfo, at: Millis) -> Self {
        let detail = json!({"action_type": action_type, "method": method.as_str()});
        Self::about(AuditKind::SessionCreated, owner, None, detail, client, at)
    }

    /// `by`: what decided, e.g. `passkey` with its id, `mock`, `link`.
    pub fn session_decided(session: &Session, decision: &str, by: Value, client: &ClientInfo, at: Millis) -> Self {
        let detail = json!({"decision": decision, "by": by, "action_type": session.action_type, "method": session.method.as_str()});
        Self::about(AuditKind::SessionDecided, &session.owner, Some(&session.id), detail, client, at)
    }

    /// "This wasn't me": the session denied from the paired phone, reported.
    pub fn session_reported(session: &Session, phone_id: &str, client: &ClientInfo, at: Millis) -> Self {
        let detail =
            json!({"decision": "deny", "phone_id": phone_id, "action_type": session.action_type, "method": session.method.as_str()});
        Self::about(AuditKind::SessionReported, &session.owner, Some(&session.id), detail, client, at)
    }

    pub fn replay_refused(owner: &Owner, session_id: Option<&str>, code: &str, client: &ClientInfo, at: Millis) -> Self {
        Self::about(AuditKind::ReplayRefused, owner, session_id, json!({"code": code}), client, at)
    }

    pub fn webauthn_failed(session: &Session, ceremony: &str, reason: &str, client: &ClientInfo, at: Millis) -> Self {
        let detail = json!({"ceremony": ceremony, "reason": reason});
        Self::about(AuditKind::WebauthnFailed, &session.owner, Some(&session.id), detail, client, at)
    }

    pub fn passkey_enrolled(session: &Session, credential_id: &str, client: &ClientInfo, at: Millis) -> Self {
        let detail = json!({"credential_id": credential_id, "via": "approval_link"});
        Self::about(AuditKind::PasskeyEnrolled, &session.owner, Some(&session.id), detail, client, at)
    }

    /// A wrong password on an approval link, before a first passkey.
    pub fn password_refused(session: &Session, attempts_left: u32, client: &ClientInfo, at: Millis) -> Self {
        let detail = json!({"via": "approval_link", "attempts_left": attempts_left});
        Self::about(AuditKind::PasswordRefused, &session.owner, Some(&session.id), detail, client, at)
    }

    /// The right password of a first passkey's link: the knowledge
    /// element of that approval.
    pub fn password_accepted(session: &Session, client: &ClientInfo, at: Millis) -> Self {
        Self::about(AuditKind::PasswordAccepted, &session.owner, Some(&session.id), json!({"via": "approval_link"}), client, at)
    }

    /// An event of a user's account (no partner, no SCA session);
    /// `user_id` is absent when no account matched (an unknown email).
    pub fn account(kind: AuditKind, user_id: Option<&str>, detail: Value, client: &ClientInfo, at: Millis) -> Self {
        AuditEvent { kind, at, partner_id: None, user_id: user_id.map(str::to_owned), session_id: None, detail, client: client.clone() }
    }

    pub fn limit_reached(owner: &Owner, limit: &str, client: &ClientInfo, at: Millis) -> Self {
        Self::about(AuditKind::LimitReached, owner, None, json!({"limit": limit}), client, at)
    }
}

#[cfg(test)]
mod tests {
    fn ip(text: &str) -> ClientInfo {
        ClientInfo::new(Some(text.parse().unwrap()), None)
    }

    #[test]
    fn ipv6_clients_are_rate_limited_by_their_64() {
        assert_eq!(ip("203.0.113.7").rate_key(), "203.0.113.7");
        assert_eq!(ip("::ffff:203.0.113.7").rate_key(), "203.0.113.7");
        let key = ip("2001:db8:1:2:aaaa::1").rate_key();
        assert_eq!(key, "2001:db8:1:2::/64");
        assert_eq!(ip("2001:db8:1:2:ffff:ffff:ffff:ffff").rate_key(), key);
        assert_ne!(ip("2001:db8:1:3::1").rate_key(), key);
        assert_eq!(ClientInfo::default().rate_key(), "unknown");
    }

    use super::*;

    #[test]
    fn every_kind_written_is_one_the_activity_page_knows() {
        let written: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        let mut known = shared::audit_kind::ALL.to_vec();
        let mut sorted = written.clone();
        sorted.sort_unstable();
        known.sort_unstable();
        assert_eq!(sorted, known);
    }

    #[test]
    fn a_user_agent_is_cut_and_cleaned_of_control_characters() {
        let client = ClientInfo::new(None, Some(&format!("Mozilla\n{}", "x".repeat(1000))));
        let ua = client.user_agent.unwrap_or_default();
        assert_eq!(ua.chars().count(), USER_AGENT_MAX);
        assert!(ua.starts_with("Mozillax"));
    }
}
