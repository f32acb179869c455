//! The step-up: a browser session proves its factors again before it binds
//! a new one (the rule is `crate::binding`'s). What it asks depends on the
//! user: a passkey alone (both factors), or the password with a code of
//! their authenticator app, or, for a user with no second factor yet, the
//! password with a code sent by SMS to the registered phone (the sms-otp
//! machinery: a MAC under a key derived from `PASSGATE_SECRETS_KEY`,
//! bound to the browser session, 5 minutes, five wrong codes burn it, a
//! new one at most every 30 s).

use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

use super::{verify_password, Accounts, Current};
use crate::binding::{Proofs, Purpose, StepUp, Way};
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, CeremonyKind, ClientInfo, StepUpAttempt, TotpCounter};
use crate::notify::sms::OutgoingSms;
use crate::one_time_code::{new_code, CodeFor, MAX_WRONG_CODES, OTP_LIFETIME_MS, PAIRING_CODE_LIFETIME_MS, RESEND_AFTER_MS};
use crate::sca::failures::Blocked;
use crate::store::{Rate, StepUpCode};
use shared::error_code as code;

/// Step-up codes by SMS per user, whatever the session: three at once,
/// then one every ten minutes (each session also waits 30 s between two).
const SMS_PER_USER: Rate = Rate { burst: 3, interval_ms: 10 * crate::clock::Millis::MINUTE };

/// The proofs a page sends at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepUpInput<'a> {
    pub password: Option<&'a str>,
    pub code: Option<&'a str>,
    /// The code is the one sent by SMS, from a user who has an
    /// authenticator app but lost it (a user with no second factor has
    /// no other code).
    pub by_sms: bool,
}

/// What a right code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proven {
    /// A second factor, or the phone of a user who has none.
    Possession,
    /// The phone of a user who has a second factor (see `crate::binding`).
    Phone,
}

impl Accounts {
    /// The user's second factors: an authenticator app, passkeys.
    async fn has_factors(&self, current: &Current) -> Result<(bool, bool)> {
        let user_id = &current.user.id;
        let has_totp = self.store.totp_of_user(user_id).await?.is_some_and(|t| t.confirmed_at.is_some());
        let has_passkey = !self.store.passkeys_of_user(user_id).await?.is_empty();
        Ok((has_totp, has_passkey))
    }

    /// How this user proves possession again, for `purpose`.
    async fn possession_ways(&self, current: &Current, purpose: Purpose) -> Result<Vec<Way>> {
        let (has_totp, has_passkey) = self.has_factors(current).await?;
        Ok(Way::open_to(has_totp, has_passkey, purpose))
    }

    /// What the session must prove before a binding for `purpose`; `None`: nothing.
    pub async fn step_up_due(&self, current: &Current, purpose: Purpose) -> Result<Option<StepUp>> {
        self.due_with(current, current.session.proofs, purpose).await
    }

    async fn due_with(&self, current: &Current, proofs: Proofs, purpose: Purpose) -> Result<Option<StepUp>> {
        let due = proofs.due(self.clock.now(), purpose);
        if due.nothing() {
            return Ok(None);
        }
        Ok(StepUp::of(due, self.possession_ways(current, purpose).await?))
    }

    /// The rule, before every binding from the account area: fresh proofs
    /// of two factors, or a step-up (never a silent refusal).
    pub(super) async fn require_binding(&self, current: &Current, purpose: Purpose) -> Result<()> {
        match self.step_up_due(current, purpose).await? {
            None => Ok(()),
            Some(step_up) => Err(Error::StepUpRequired(step_up)),
        }
    }

    /// Sends a code to the registered phone: for a user with no second
    /// factor, or one replacing the authenticator app they lost.
    pub async fn send_step_up_code(&self, current: &Current, purpose: Purpose, client: &ClientInfo) -> Result<()> {
        if !self.possession_ways(current, purpose).await?.contains(&Way::Sms) {
            return Err(Error::Conflict {
                code: code::STEP_UP_SMS_UNAVAILABLE,
                message: "You have a second factor: confirm it's you with it",
            });
        }
        let now = self.clock.now();
        let user = &current.user;
        if let Err(wait_ms) = self.store.take_rates(&[(format!("step_up_sms:user:{}", user.id), SMS_PER_USER)], now).await? {
            return Err(too_soon(wait_ms));
        }
        let code = new_code()?;
        let session = current.token.hash();
        let sent = SentCode::for_purpose(purpose);
        let mac = self.otp_key.seal(sent.code_for, &session, &code);
        let sms = OutgoingSms::step_up_code(
            user.phone.clone(),
            sent.what,
            &code,
            sent.lifetime_ms,
            &self.origin_host,
            now,
            self.outbox_copy.clone(),
        );
        let audit = AuditEvent::account(AuditKind::StepUpCodeSent, Some(&user.id), json!({"to": user.phone.masked()}), client, now);
        let saved = StepUpCode { session: &session, mac: &mac, sms: &sms, audit: &audit, resend_after_ms: RESEND_AFTER_MS, now };
        if let Err(wait_ms) = self.store.save_step_up_code(saved).await? {
            return Err(too_soon(wait_ms));
        }
        self.deliver(&sms).await;
        Ok(())
    }

    /// Checks each proof given and records it; answers what is still due
    /// for `purpose`.
    pub async fn step_up(
        &self,
        current: &Current,
        input: StepUpInput<'_>,
        purpose: Purpose,
        client: &ClientInfo,
    ) -> Result<Option<StepUp>> {
        if input.password.is_none() && input.code.is_none() {
            return Err(Error::Validation { field: "password".into(), message: "give the password, a code, or both".into() });
        }
        let mut proofs = current.session.proofs;
        if let Some(password) = input.password {
            self.check_password(current, password, client).await?;
            proofs.knowledge_at = self.record(current, Proofs::password(self.clock.now()), "password", client).await?.knowledge_at;
        }
        if let Some(code) = input.code {
            let (way, proven) = self.check_possession_code(current, code, input.by_sms, purpose, client).await?;
            let now = self.clock.now();
            let proof = match proven {
                Proven::Possession => Proofs::default().with_possession(now),
                Proven::Phone => Proofs::default().with_phone(now),
            };
            let recorded = self.record(current, proof, way, client).await?;
            proofs.possession_at = recorded.possession_at;
            proofs.phone_at = recorded.phone_at;
        }
        self.due_with(current, proofs, purpose).await
    }

    /// The challenge of a step-up with a passkey.
    pub async fn start_passkey_step_up(&self, current: &Current) -> Result<RequestChallengeResponse> {
        let passkeys = self.store.passkeys_of_user(&current.user.id).await?;
        if passkeys.is_empty() {
            return Err(Error::Conflict { code: code::NO_PASSKEY, message: "You have no passkey: confirm it's you another way" });
        }
        let (challenge, state) = self.relying_party.start_authentication(&passkeys)?;
        self.store.save_account_ceremony(&current.token.hash(), CeremonyKind::Authentication, &state, self.clock.now()).await?;
        Ok(challenge)
    }

    /// A passkey with user verification proves both factors at once.
    pub async fn finish_passkey_step_up(
        &self,
        current: &Current,
        answer: &PublicKeyCredential,
        purpose: Purpose,
        client: &ClientInfo,
    ) -> Result<Option<StepUp>> {
        self.verify_own_passkey(current, answer, client).await?;
        let proofs = self.record(current, Proofs::both(self.clock.now()), "passkey", client).await?;
        self.due_with(current, proofs, purpose).await
    }

    /// Stores `proofs` on the session; the session's proofs after it.
    async fn record(&self, current: &Current, proofs: Proofs, via: &str, client: &ClientInfo) -> Result<Proofs> {
        let detail = json!({"via": via});
        let event = AuditEvent::account(AuditKind::SteppedUp, Some(&current.user.id), detail, client, self.clock.now());
        if !self.store.record_proofs(&current.token.hash(), proofs, &event).await? {
            return Err(Error::NotSignedIn);
        }
        let before = current.session.proofs;
        Ok(Proofs {
            knowledge_at: proofs.knowledge_at.or(before.knowledge_at),
            possession_at: proofs.possession_at.or(before.possession_at),
            phone_at: proofs.phone_at.or(before.phone_at),
        })
    }

    /// The password, under the sign-in's per-account and per-client rates
    /// (a right one gives its share back).
    async fn check_password(&self, current: &Current, password: &str, client: &ClientInfo) -> Result<()> {
        let Some(hash) = current.user.password.clone() else {
            return Err(Error::NotAllowed { code: code::PASSWORD_NOT_SET, message: "Your account has no password" });
        };
        // The user's own step-up budget (a stranger's guesses at the
        // sign-in cannot spend it), and the client's.
        let rates =
            vec![(format!("step_up:user:{}", current.user.id), super::PER_ACCOUNT), (super::client_rate_key(client), super::PER_CLIENT)];
        if let Err(wait_ms) = self.store.take_rates(&rates, self.clock.now()).await? {
            return Err(super::slowed("Too many wrong passwords: wait a moment before trying again", wait_ms));
        }
        if verify_password(hash, password).await? {
            self.store.give_back_rates(&rates).await?;
            return Ok(());
        }
        self.store.append_audit(&self.factor_event(AuditKind::FactorRefused, current, "password", client)).await?;
        Err(Error::NotAllowed { code: code::PASSWORD_INVALID, message: "Wrong password" })
    }

    /// A code of the user's authenticator app or one sent by SMS (for a
    /// user without a second factor, or, `by_sms`, one who lost their
    /// app); returns which, and what it proved.
    async fn check_possession_code(
        &self,
        current: &Current,
        code: &str,
        by_sms: bool,
        purpose: Purpose,
        client: &ClientInfo,
    ) -> Result<(&'static str, Proven)> {
        let (has_totp, has_passkey) = self.has_factors(current).await?;
        // A pairing's code is always the one sent by SMS, and proves the phone.
        let pairing = purpose == Purpose::PairPhone;
        if has_totp && !by_sms && !pairing {
            let event = self.factor_event(AuditKind::FactorUsed, current, "totp", client);
            self.check_totp(current, code, TotpCounter::App, None, event, client).await?;
            return Ok(("totp", Proven::Possession));
        }
        let proven = match (has_totp, has_passkey) {
            _ if pairing => Proven::Phone,
            (false, false) => Proven::Possession,
            (true, _) => Proven::Phone,
            (false, true) => {
                return Err(Error::Conflict { code: code::STEP_UP_CODE_MISSING, message: "Confirm it's you with your passkey" });
            }
        };
        let session = current.token.hash();
        let sent = SentCode::for_purpose(purpose);
        let not_before = self.clock.now().plus_millis(-sent.lifetime_ms);
        let StepUpAttempt::Reserved { mac, failures } = self.store.reserve_step_up_attempt(&session, MAX_WRONG_CODES, not_before).await?
        else {
            return Err(Error::Conflict {
                code: code::STEP_UP_CODE_MISSING,
                message: "No code is waiting (it expired, or took five wrong tries): ask for a new one",
            });
        };
        // A code to check: counted against the user too, with their other
        // codes and links.
        let attempt = match self.failures.reserve(&current.user.id).await? {
            Ok(attempt) => attempt,
            Err(blocked) => return Err(self.blocked(blocked)),
        };
        if self.otp_key.matches(sent.code_for, &session, code.trim(), &mac) {
            self.failures.succeeded(attempt).await?;
            return Ok(("sms", proven));
        }
        self.store.append_audit(&self.factor_event(AuditKind::FactorRefused, current, "sms", client)).await?;
        let user_left = attempt.left();
        if let Some(blocked) = self.failures.failed(attempt, &current.user.phone, client).await? {
            return Err(self.blocked(blocked));
        }
        Err(Error::StepUpCodeRefused { attempts_left: MAX_WRONG_CODES.saturating_sub(failures).min(user_left) })
    }

    fn blocked(&self, blocked: Blocked) -> Error {
        Error::TooManyRequests {
            code: code::ATTEMPTS_BLOCKED,
            message: "Too many wrong codes in a row: try again later (we told you by SMS)",
            retry_after_secs: blocked.seconds_from(self.clock.now()),
        }
    }
}

/// What a step-up code sent for a purpose says, binds and lives.
struct SentCode {
    what: &'static str,
    code_for: CodeFor,
    lifetime_ms: i64,
}

impl SentCode {
    fn for_purpose(purpose: Purpose) -> Self {
        match purpose {
            Purpose::Bind => {
                SentCode { what: "add a sign-in method to your account", code_for: CodeFor::Approval, lifetime_ms: OTP_LIFETIME_MS }
            }
            Purpose::ReplaceApp => {
                SentCode { what: "replace your authenticator app", code_for: CodeFor::Approval, lifetime_ms: OTP_LIFETIME_MS }
            }
            Purpose::PairPhone => SentCode { what: "pair this phone", code_for: CodeFor::Pairing, lifetime_ms: PAIRING_CODE_LIFETIME_MS },
        }
    }
}

fn too_soon(wait_ms: i64) -> Error {
    Error::TooManyRequests {
        code: code::STEP_UP_CODE_TOO_SOON,
        message: "A code was sent a moment ago: wait before asking for another",
        retry_after_secs: u64::try_from(wait_ms).map_or(1, |ms| ms.div_ceil(1_000).max(1)),
    }
}
