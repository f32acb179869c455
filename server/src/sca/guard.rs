//! The guard of sensitive actions, and the partner's view of sessions.
//!
//! First call (no token) → a new session bound to the request's fingerprint,
//! the challenge sent through the method's channel → `428`.
//! Replay (token) → in one transaction: consume the allowed session bound to
//! this request and run the action; otherwise `412` with the reason.

use shared::{error_code, ScaSessionBody};

use super::{Decision, Fingerprint, Method, RequestParts, Sca, Session, SESSION_LIFETIME_MS};
use crate::clock::Millis;
use crate::error::{Error, ReplayRefusal, Result, ScaChallenge};
use crate::ledger::{Action, ActionOutcome};
use crate::sms::OutgoingSms;
use crate::store::{Caller, NewSession};
use crate::token::{Secret, SecretHash};

const UNKNOWN_SESSION: Error = Error::NotFound("No such SCA session");

/// Minimum time between two polls of one session.
pub const POLL_INTERVAL_MS: i64 = Millis::SECOND;

/// A sensitive request as the guard needs it.
#[derive(Debug)]
pub struct ProtectedRequest<'a> {
    pub parts: RequestParts<'a>,
    /// `X-Qonto-Sca-Session-Token`, raw.
    pub sca_token: Option<&'a str>,
}

impl Sca {
    /// Runs `action` if the request carries a token allowing it; otherwise
    /// answers with the challenge (428) or the reason for refusal (412).
    pub async fn run_protected(&self, caller: &Caller, request: &ProtectedRequest<'_>, action: &Action) -> Result<ActionOutcome> {
        let method = self.method_of(caller, request.parts.preference)?;
        let fingerprint = Fingerprint::of(&request.parts);
        match request.sca_token {
            None => Err(self.challenge(caller, method, action, fingerprint).await?),
            Some(token) => self.replay(caller, token, &fingerprint, action).await,
        }
    }

    fn method_of(&self, caller: &Caller, preference: Option<&[u8]>) -> Result<Method> {
        let method = Method::from_header(preference).map_err(|e| Error::BadRequest {
            code: error_code::INVALID_2FA_PREFERENCE,
            message: e.to_string(),
        })?;
        match method {
            Method::Mock if !self.sandbox => Err(Error::BadRequest {
                code: error_code::INVALID_2FA_PREFERENCE,
                message: "The mock method exists only in sandbox".into(),
            }),
            Method::SmsOtp if !caller.embed => Err(Error::Forbidden("SMS one-time codes are only available to Embed partners")),
            Method::SmsOtp => Err(Error::BadRequest {
                code: error_code::METHOD_NOT_AVAILABLE,
                message: "The sms-otp method is not available yet".into(),
            }),
            other => Ok(other),
        }
    }

    /// Opens a session for the request and sends its challenge; returns the
    /// 428 to answer with.
    async fn challenge(&self, caller: &Caller, method: Method, action: &Action, fingerprint: Fingerprint) -> Result<Error> {
        let (message, link) = match method {
            Method::PairedDevice => {
                return Ok(Error::ScaRequired(ScaChallenge {
                    code: error_code::SCA_NOT_ENROLLED,
                    message: "No paired device: ask the user to pair a phone, or use another method",
                    token: None,
                    action_type: None,
                }))
            }
            Method::Passkey => ("Passkey verification required", Some(Secret::generate()?)),
            Method::Mock => ("SCA required", None),
            Method::SmsOtp => return Err(Error::Internal("sms-otp reached the session guard".into())),
        };
        let now = self.clock.now();
        let token = Secret::generate()?;
        let sms = link.as_ref().map(|link| {
            let url = format!("{}{}", self.link_base, link.expose());
            OutgoingSms::approval_link(caller.phone.clone(), &caller.partner_name, url, now)
        });
        let new = NewSession {
            token_hash: token.hash(),
            link_hash: link.as_ref().map(Secret::hash),
            owner: &caller.owner,
            method,
            action,
            fingerprint,
            created_at: now,
            expires_at: now.plus_millis(SESSION_LIFETIME_MS),
        };
        self.store.create_session(new, sms.as_ref()).await?;
        if let Some(sms) = &sms {
            // Stored with the session; a failed hand-off stays in the outbox.
            if let Err(e) = self.sms.deliver(sms).await {
                tracing::warn!(error = %e, "sms delivery failed");
            }
        }
        Ok(Error::ScaRequired(ScaChallenge {
            code: error_code::SCA_REQUIRED,
            message,
            token: Some(token),
            action_type: Some(action.action_type()),
        }))
    }

    async fn replay(&self, caller: &Caller, token: &str, fingerprint: &Fingerprint, action: &Action) -> Result<ActionOutcome> {
        let token = Secret::parse(token).map_err(|_| Error::Replay(ReplayRefusal::Invalid))?;
        let hash = token.hash();
        let now = self.clock.now();
        if let Some(outcome) = self.store.consume_and_run(&hash, caller, fingerprint, action, now).await? {
            return Ok(outcome);
        }
        let refusal = match self.store.session_by_token(&hash).await? {
            None => ReplayRefusal::Invalid,
            // Allowed a moment ago but not consumable now: a concurrent
            // replay won the race.
            Some(session) => session.replay_refusal(&caller.owner, fingerprint, now).unwrap_or(ReplayRefusal::Consumed),
        };
        Err(Error::Replay(refusal))
    }

    /// `GET /v2/sca_sessions/{token}` (and the mocked variant, `mocked_only`).
    pub async fn poll(&self, caller: &Caller, token: &str, mocked_only: bool) -> Result<ScaSessionBody> {
        let hash = session_hash(token)?;
        let now = self.clock.now();
        let Some(session) = self.store.record_poll(&hash, &caller.owner, mocked_only, now, POLL_INTERVAL_MS).await? else {
            // Not recorded: tell an unknown session from one polled too soon.
            self.owned_session(caller, &hash, mocked_only).await?;
            return Err(Error::TooManyRequests { retry_after_secs: 1 });
        };
        let (result, canceled_at) = session.poll(now);
        Ok(ScaSessionBody { result, canceled_at: canceled_at.map(Millis::to_rfc3339) })
    }

    /// Sandbox: the partner plays the user of a `mock` session.
    pub async fn decide_mocked(&self, caller: &Caller, token: &str, decision: Decision) -> Result<()> {
        let session = self.owned_session(caller, &session_hash(token)?, true).await?;
        let now = self.clock.now();
        let to = session.decide(decision, now).map_err(|_| Error::approval_closed())?;
        if self.store.decide_session(&session.id, to, now).await? {
            Ok(())
        } else {
            Err(Error::approval_closed())
        }
    }

    async fn owned_session(&self, caller: &Caller, hash: &SecretHash, mocked_only: bool) -> Result<Session> {
        match self.store.session_by_token(hash).await? {
            Some(s) if s.owner == caller.owner && (!mocked_only || s.method == Method::Mock) => Ok(s),
            _ => Err(UNKNOWN_SESSION),
        }
    }
}

/// The stored form of a session token from a URL; malformed means unknown.
fn session_hash(token: &str) -> Result<SecretHash> {
    Ok(Secret::parse(token).map_err(|_| UNKNOWN_SESSION)?.hash())
}
