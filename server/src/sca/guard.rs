//! The guard of sensitive actions, and the partner's view of sessions.
//!
//! First call (no token) → a new session bound to the request's fingerprint,
//! within the abuse limits, the challenge sent through the method's channel
//! → `428`.
//! Replay (token) → in one transaction: consume the allowed session bound to
//! this request and run the action; otherwise `412` with the reason.
//! `X-Qonto-Idempotency-Key`: a create that succeeded is answered again,
//! byte for byte, for 30 minutes, without running again.
//! `sms-otp` takes the same steps with a code instead of a token (`otp.rs`).

use shared::{error_code, ScaSessionBody};

use super::{Decision, Fingerprint, Method, RequestParts, Sca, Session};
use crate::clock::Millis;
use crate::error::{Error, ReplayRefusal, Result, ScaChallenge};
use crate::ledger::{Action, Created};
use crate::model::{AuditEvent, Caller, ClientInfo, IdempotencyKey, SESSION_LIFETIME_MS};
use crate::notify::push::{Announced, OutgoingPush, StoredPush};
use crate::notify::{Notice, OutgoingSms};
use crate::store::{KeyWindow, LimitKind, Lookup, NewSession, Replay, ReplayOutcome, SessionOpened};
use crate::token::{Secret, SecretHash};

const UNKNOWN_SESSION: Error = Error::NotFound("No such SCA session");

/// Minimum time between two polls of one session.
pub const POLL_INTERVAL_MS: i64 = Millis::SECOND;

/// How long a successful create is remembered for its idempotency key.
pub const IDEMPOTENCY_WINDOW_MS: i64 = 30 * Millis::MINUTE;

/// A sensitive request as the guard needs it.
pub struct ProtectedRequest<'a> {
    pub parts: RequestParts<'a>,
    /// `X-Qonto-Sca-Session-Token`, raw.
    pub sca_token: Option<&'a str>,
    /// `X-Qonto-MFA`, raw: an `sms-otp` code.
    pub mfa: Option<&'a str>,
    pub idempotency_key: Option<&'a IdempotencyKey>,
    pub client: &'a ClientInfo,
}

/// The session token is a secret: `Debug` says only whether there is one.
impl std::fmt::Debug for ProtectedRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectedRequest")
            .field("parts", &self.parts)
            .field("sca_token", &self.sca_token.map(|_| "<redacted>"))
            .field("mfa", &self.mfa.map(|_| "<redacted>"))
            .field("idempotency_key", &self.idempotency_key)
            .field("client", &self.client)
            .finish()
    }
}

impl Sca {
    /// Runs `action` if the request carries a token allowing it; otherwise
    /// answers with the challenge (428) or the reason for refusal (412).
    pub async fn run_protected(&self, caller: &Caller, request: &ProtectedRequest<'_>, action: &Action) -> Result<Created> {
        let method = self.method_of(caller, request.parts.preference)?;
        let fingerprint = Fingerprint::of(&request.parts);
        let now = self.clock.now();
        let key = request.idempotency_key.map(|k| KeyWindow { key: k.as_str(), not_before: Millis(now.0 - IDEMPOTENCY_WINDOW_MS) });
        if let Some(key) = key {
            if let Some(remembered) = self.store.remembered_response(&caller.owner.partner_id, key).await? {
                return if remembered.answers(&caller.owner, &fingerprint) {
                    Ok(remembered.created)
                } else {
                    Err(Error::IdempotencyKeyReused)
                };
            }
        }
        if method == Method::SmsOtp {
            return self.sms_otp(caller, request, action, fingerprint, key).await;
        }
        match request.sca_token {
            None => Err(self.challenge(caller, method, action, fingerprint, request.client).await?),
            Some(token) => self.replay(caller, token, &fingerprint, action, key, request.client).await,
        }
    }

    fn method_of(&self, caller: &Caller, preference: Option<&[u8]>) -> Result<Method> {
        let method = Method::from_header(preference)
            .map_err(|e| Error::BadRequest { code: error_code::INVALID_2FA_PREFERENCE, message: e.to_string() })?;
        match method {
            Method::Mock if !self.sandbox => Err(Error::BadRequest {
                code: error_code::INVALID_2FA_PREFERENCE,
                message: "The mock method exists only in sandbox".into(),
            }),
            Method::SmsOtp if !caller.embed => Err(Error::Forbidden("SMS one-time codes are only available to Embed partners")),
            other => Ok(other),
        }
    }

    /// Opens a session for the request and sends its challenge; returns the
    /// 428 to answer with.
    async fn challenge(
        &self,
        caller: &Caller,
        method: Method,
        action: &Action,
        fingerprint: Fingerprint,
        client: &ClientInfo,
    ) -> Result<Error> {
        let now = self.clock.now();
        let (message, link, notice) = match method {
            Method::PairedDevice => {
                let Some(phone) = self.store.paired_phone_of_user(&caller.owner.user_id).await? else {
                    return Ok(Error::ScaRequired(ScaChallenge {
                        code: error_code::SCA_NOT_ENROLLED,
                        message: "No paired device: ask the user to pair a phone, or use another method",
                        token: None,
                        action_type: None,
                    }));
                };
                ("SCA required", None, Some(Notice::Push(OutgoingPush { phone_id: phone.id, sent_at: now })))
            }
            Method::Passkey => {
                let link = Secret::generate()?;
                let url = format!("{}{}", self.link_base, link.expose());
                let sms = OutgoingSms::approval_link(caller.phone.clone(), &caller.partner_name, url, now, self.outbox_copy());
                ("Passkey verification required", Some(link), Some(Notice::Sms(sms)))
            }
            Method::Mock => ("SCA required", None, None),
            Method::SmsOtp => return Err(Error::Internal("sms-otp reached the session guard".into())),
        };
        let token = Secret::generate()?;
        let new = NewSession {
            token_hash: token.hash(),
            link_hash: link.as_ref().map(Secret::hash),
            owner: &caller.owner,
            method,
            action,
            fingerprint,
            created_at: now,
            expires_at: now.plus_millis(SESSION_LIFETIME_MS),
            otp: None,
        };
        self.open_and_notify(caller, new, notice.as_ref(), client).await?;
        Ok(Error::ScaRequired(ScaChallenge {
            code: error_code::SCA_REQUIRED,
            message,
            token: Some(token),
            action_type: Some(action.action_type()),
        }))
    }

    /// Opens the session within the limits, with its notice (SMS or push)
    /// and audit event in the same transaction, then hands the notice to
    /// its sender.
    pub(super) async fn open_and_notify(
        &self,
        caller: &Caller,
        new: NewSession<'_>,
        notice: Option<&Notice>,
        client: &ClientInfo,
    ) -> Result<()> {
        let (now, method) = (new.created_at, new.method);
        let event = AuditEvent::session_created(&caller.owner, new.action.action_type(), method, client, now);
        let id = match self.store.open_session(new, &self.limits, notice, &event).await? {
            SessionOpened::Opened(id) => id,
            SessionOpened::Limited { limit, retry_after_ms } => {
                metrics::counter!("passgate_sca_limits_total", "limit" => limit.as_str()).increment(1);
                self.store.append_audit(&AuditEvent::limit_reached(&caller.owner, limit.as_str(), client, now)).await?;
                return Err(limited(limit, retry_after_ms));
            }
            SessionOpened::TooSoon { retry_after_ms } => {
                return Err(Error::TooManyRequests {
                    code: error_code::SMS_RATE_LIMITED,
                    message: "A code for this request was sent less than 30 seconds ago: wait before asking again",
                    retry_after_secs: retry_secs(retry_after_ms),
                })
            }
        };
        metrics::counter!("passgate_sca_sessions_opened_total", "method" => method.as_str()).increment(1);
        // Stored with the session; a failed hand-off stays in its outbox.
        match notice {
            Some(Notice::Sms(sms)) => {
                let outcome = outcome(self.sms.deliver(sms).await, "sms");
                metrics::counter!("passgate_sms_sent_total", "outcome" => outcome).increment(1);
            }
            Some(Notice::Push(push)) => {
                let stored = StoredPush { phone_id: push.phone_id.clone(), announced: Announced::Approval(id), sent_at: push.sent_at };
                let outcome = outcome(self.push.deliver(&stored).await, "push");
                metrics::counter!("passgate_push_sent_total", "outcome" => outcome).increment(1);
            }
            None => {}
        }
        Ok(())
    }

    async fn replay(
        &self,
        caller: &Caller,
        token: &str,
        fingerprint: &Fingerprint,
        action: &Action,
        idempotency: Option<KeyWindow<'_>>,
        client: &ClientInfo,
    ) -> Result<Created> {
        let Ok(token) = Secret::parse(token) else {
            return Err(self.refuse(caller, ReplayRefusal::Invalid, None, client).await?);
        };
        self.replay_hash(caller, &token.hash(), fingerprint, action, idempotency, client).await
    }

    /// The replay of the session stored under `hash`.
    pub(super) async fn replay_hash(
        &self,
        caller: &Caller,
        hash: &SecretHash,
        fingerprint: &Fingerprint,
        action: &Action,
        idempotency: Option<KeyWindow<'_>>,
        client: &ClientInfo,
    ) -> Result<Created> {
        let now = self.clock.now();
        let replay = Replay { token_hash: hash, caller, fingerprint, action, idempotency, now };
        let outcome = self.store.consume_and_run(replay).await?;
        let label = match &outcome {
            ReplayOutcome::Ran(_) => "ran",
            ReplayOutcome::Remembered(_) => "remembered",
            ReplayOutcome::KeyReused => "key_reused",
            ReplayOutcome::Refused => "refused",
        };
        metrics::counter!("passgate_replays_total", "outcome" => label).increment(1);
        match outcome {
            ReplayOutcome::Ran(created) | ReplayOutcome::Remembered(created) => return Ok(created),
            ReplayOutcome::KeyReused => return Err(Error::IdempotencyKeyReused),
            ReplayOutcome::Refused => {}
        }
        let session = self.store.session_by_token(hash, Lookup::Settled).await?;
        let (refusal, session_id) = match &session {
            // Another partner's or user's session is not theirs to learn about.
            Some(s) if s.owner == caller.owner => {
                // Allowed a moment ago but not consumable now: a concurrent
                // replay won the race.
                (s.replay_refusal(&caller.owner, fingerprint, now).unwrap_or(ReplayRefusal::Consumed), Some(s.id.as_str()))
            }
            _ => (ReplayRefusal::Invalid, None),
        };
        Err(self.refuse(caller, refusal, session_id, client).await?)
    }

    /// A refused replay, logged: the error to answer with.
    pub(super) async fn refuse(
        &self,
        caller: &Caller,
        refusal: ReplayRefusal,
        session_id: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Error> {
        let event = AuditEvent::replay_refused(&caller.owner, session_id, refusal.code(), client, self.clock.now());
        self.store.append_audit(&event).await?;
        Ok(Error::Replay(refusal))
    }

    /// `GET /v2/sca_sessions/{token}` (and the mocked variant, `mocked_only`).
    pub async fn poll(&self, caller: &Caller, token: &str, mocked_only: bool) -> Result<ScaSessionBody> {
        let hash = session_hash(token)?;
        let now = self.clock.now();
        let Some(session) = self.store.record_poll(&hash, &caller.owner, mocked_only, now, POLL_INTERVAL_MS).await? else {
            // Not recorded: tell an unknown session from one polled too soon.
            self.owned_session(caller, &hash, mocked_only, Lookup::Settled).await?;
            return Err(Error::poll_too_soon());
        };
        let (result, canceled_at) = session.poll(now);
        Ok(ScaSessionBody { result, canceled_at: canceled_at.map(Millis::to_rfc3339) })
    }

    /// Sandbox: the partner plays the user of a `mock` session.
    pub async fn decide_mocked(&self, caller: &Caller, token: &str, decision: Decision, client: &ClientInfo) -> Result<()> {
        // Checked again by the decision's compare-and-set.
        let session = self.owned_session(caller, &session_hash(token)?, true, Lookup::Rechecked).await?;
        let now = self.clock.now();
        let to = session.decide(decision, now).map_err(|_| Error::approval_closed())?;
        let event = AuditEvent::session_decided(&session, to.as_str(), serde_json::json!({"method": "mock"}), client, now);
        if self.store.decide_session(&session.id, to, now, &event, None).await? {
            decided(session.method, to);
            Ok(())
        } else {
            Err(Error::approval_closed())
        }
    }

    async fn owned_session(&self, caller: &Caller, hash: &SecretHash, mocked_only: bool, lookup: Lookup) -> Result<Session> {
        match self.store.session_by_token(hash, lookup).await? {
            Some(s) if s.owner == caller.owner && (!mocked_only || s.method == Method::Mock) => Ok(s),
            _ => Err(UNKNOWN_SESSION),
        }
    }
}

/// A hand-off's outcome, as counted; a failure is logged.
fn outcome(delivered: anyhow::Result<()>, what: &'static str) -> &'static str {
    match delivered {
        Ok(()) => "sent",
        Err(e) => {
            tracing::warn!(error = %e, notice = what, "delivery failed");
            "failed"
        }
    }
}

/// Counts a decision (never who made it).
pub(super) fn decided(method: Method, to: crate::model::State) {
    metrics::counter!("passgate_sca_sessions_decided_total", "method" => method.as_str(), "decision" => to.as_str()).increment(1);
}

/// The 429 for a limit, with when to try again (whole seconds, at least 1).
fn limited(limit: LimitKind, retry_after_ms: i64) -> Error {
    let (code, message) = match limit {
        LimitKind::OpenSessions => {
            (error_code::TOO_MANY_OPEN_SESSIONS, "The user has too many approvals waiting: let them answer or expire")
        }
        LimitKind::Sms => (error_code::SMS_RATE_LIMITED, "Too many SMS were sent to this user lately"),
        LimitKind::PartnerSessions => (error_code::PARTNER_RATE_LIMITED, "Too many SCA sessions opened by this partner lately"),
        LimitKind::PendingPush => {
            (error_code::PUSH_PENDING, "An approval already waits on the user's phone: let them answer it, or let it expire")
        }
    };
    Error::TooManyRequests { code, message, retry_after_secs: retry_secs(retry_after_ms) }
}

/// Whole seconds, at least 1.
fn retry_secs(retry_after_ms: i64) -> u64 {
    u64::try_from(retry_after_ms.max(1)).unwrap_or(1).div_ceil(1_000)
}

/// The stored form of a session token from a URL; malformed means unknown.
fn session_hash(token: &str) -> Result<SecretHash> {
    Ok(Secret::parse(token).map_err(|_| UNKNOWN_SESSION)?.hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_protected_request_never_shows_its_token() {
        let secret = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5";
        let client = ClientInfo::default();
        let request = ProtectedRequest {
            parts: RequestParts { method: "POST", path: "/v2/sepa/transfers", query: None, preference: None, body: b"{}" },
            sca_token: Some(secret),
            mfa: Some("123456"),
            idempotency_key: None,
            client: &client,
        };
        let debug = format!("{request:?}");
        assert!(!debug.contains(secret) && !debug.contains("123456"), "{debug}");
        assert!(debug.contains("<redacted>"));
    }

    #[test]
    fn a_limit_says_which_and_when_to_retry() {
        let error = limited(LimitKind::Sms, 1_500);
        assert!(matches!(error, Error::TooManyRequests { code: error_code::SMS_RATE_LIMITED, retry_after_secs: 2, .. }), "{error:?}");
        assert!(matches!(limited(LimitKind::OpenSessions, 0), Error::TooManyRequests { retry_after_secs: 1, .. }));
    }
}
