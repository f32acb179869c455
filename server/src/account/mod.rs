//! The account area's domain, free of HTTP: signing in with an email and a
//! password, the browser sessions that follow (five minutes without a
//! request end one: PSD2 RTS art. 4(3)(d)), signing out.
//!
//! Sign-in answers an unknown email exactly as a wrong password (same
//! code, same message, and the same argon2 work against a decoy hash).
//! Failures slow down, never lock: each attempt first takes its share of
//! two rates, one per account (keyed by the email as typed, so unknown
//! emails are throttled alike) and one per client address, and a right
//! password gives its share back. Taking before checking bounds concurrent
//! guesses too, on every instance.

mod authenticator;
mod company;
mod confirmations;
pub mod csrf;
mod device;
mod passkeys;
mod phone;
mod push;
mod security;
mod step_up;
pub mod totp;
mod trusted;

pub use authenticator::{reseal_authenticator_keys, setup_required, Resealed, TotpSetup};
pub use company::{CompanyReport, UserFactors};
pub use passkeys::{PasskeySignIn, CEREMONY_MS};
pub use push::PushService;
pub use security::{ActivityScope, SecurityOverview, ACTIVITY_CATEGORIES, ACTIVITY_PAGE_MAX};
pub use step_up::StepUpInput;
pub use trusted::{SecondStep, TRUST_MS};

use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::binding::Proofs;
use crate::clock::{Clock, Millis};
use crate::email::Email;
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, BrowserSession, ClientInfo, Liveness, NewBrowserSession, Stage, TwoFactorPolicy, UserRecord};
use crate::notify::sms::{OutboxCopy, OutgoingSms, SmsSender};
use crate::notify::PushSender;
use crate::one_time_code::OtpKey;
use crate::password::{CheckGate, PasswordHash};
use crate::relying_party::RelyingParty;
use crate::sca::failures::UserFailures;
use crate::sealed::SecretsKey;
use crate::store::{Rate, Store};
use crate::token::Secret;

/// A browser session ends after five minutes without a request.
pub const IDLE_MS: i64 = 5 * Millis::MINUTE;
/// ... and twelve hours after its sign-in, however busy.
pub const MAX_AGE_MS: i64 = 12 * 60 * Millis::MINUTE;
/// Sign-in attempts per account: five at once, then one a minute.
pub const PER_ACCOUNT: Rate = Rate { burst: 5, interval_ms: Millis::MINUTE };
/// Sign-in attempts per client address: twenty at once, then one every five seconds.
pub const PER_CLIENT: Rate = Rate { burst: 20, interval_ms: 5 * Millis::SECOND };

/// The account service: what the account area's handlers ask of the domain.
#[derive(Clone)]
pub struct Accounts {
    store: Store,
    clock: Arc<dyn Clock>,
    /// Seals the authenticator apps' keys at rest.
    sealing: SecretsKey,
    relying_party: RelyingParty,
    sms: Arc<dyn SmsSender>,
    /// Pushes the paired phone what it is asked to confirm.
    push: Arc<dyn PushSender>,
    /// Web Push, if configured: what phones subscribe with.
    push_service: Option<PushService>,
    /// MACs the step-up codes sent by SMS.
    otp_key: OtpKey,
    /// Where a user reviews their factors (named in every factor notice).
    security_page: Arc<str>,
    /// The origin's host, for the `@host #code` line of a code's SMS.
    origin_host: Arc<str>,
    outbox_copy: OutboxCopy,
    /// Signs the device cookies.
    device_key: device::DeviceKey,
    /// Wrong step-up codes count with the user's other codes and links.
    failures: UserFailures,
}

/// What the account service is built from.
pub struct AccountParts {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub sealing: SecretsKey,
    pub relying_party: RelyingParty,
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushSender>,
    pub push_service: Option<PushService>,
    pub origin: url::Url,
    pub sandbox: bool,
    /// What the SMS outbox keeps (and seals for a provider).
    pub outbox_copy: OutboxCopy,
}

/// The browser's own cookies: its session (replaced at sign-in), its
/// trusted-browser secret and its device cookie, if it has them.
#[derive(Debug, Clone, Copy, Default)]
pub struct BrowserCookies<'a> {
    pub session: Option<&'a Secret>,
    pub trusted: Option<&'a Secret>,
    /// A device cookie (see `device.rs`), as the browser sent it.
    pub device: Option<&'a str>,
}

/// A sign-in whose password was right: the session, and the browser's new
/// device cookie (its own sign-in budget for this account from now on).
#[derive(Debug)]
pub struct PasswordSignIn {
    pub current: Current,
    pub device_cookie: String,
}

/// A live browser session and its user.
#[derive(Debug, Clone)]
pub struct Current {
    /// The session's secret, as the cookie carries it.
    pub token: Secret,
    pub session: BrowserSession,
    pub user: UserRecord,
}

impl Accounts {
    pub fn new(parts: AccountParts) -> Self {
        let origin = parts.origin.as_str().trim_end_matches('/');
        let security_page: Arc<str> = format!("{origin}/account/security").into();
        let outbox_copy = parts.outbox_copy;
        Accounts {
            failures: UserFailures::new(
                parts.store.clone(),
                parts.clock.clone(),
                parts.sms.clone(),
                Arc::clone(&security_page),
                outbox_copy.clone(),
            ),
            store: parts.store,
            clock: parts.clock,
            otp_key: OtpKey::new(&parts.sealing),
            device_key: device::DeviceKey::new(&parts.sealing),
            sealing: parts.sealing,
            relying_party: parts.relying_party,
            sms: parts.sms,
            push: parts.push,
            push_service: parts.push_service,
            security_page,
            origin_host: parts.origin.host_str().unwrap_or("localhost").into(),
            outbox_copy,
        }
    }

    /// Hands a stored SMS to the sender; it stays in the outbox if that fails.
    async fn deliver(&self, sms: &OutgoingSms) {
        if let Err(e) = self.sms.deliver(sms).await {
            tracing::warn!(error = %e, "sms delivery failed");
        }
    }

    fn liveness(&self) -> Liveness {
        Liveness { now: self.clock.now(), idle_ms: IDLE_MS, max_age_ms: MAX_AGE_MS }
    }

    /// Signs in with an email and a password. The browser gets a new
    /// secret (a session id is never carried over a sign-in), and the
    /// session it had, if any, ends.
    /// A browser that signed in to this account before (its device
    /// cookie) takes from a budget of its own, which strangers' guesses
    /// cannot spend.
    pub async fn sign_in(&self, email: &str, password: &str, cookies: BrowserCookies<'_>, client: &ClientInfo) -> Result<PasswordSignIn> {
        let now = self.clock.now();
        let device = cookies.device.and_then(|cookie| self.device_key.check(email, cookie));
        let rates = attempt_rates(email, client, device.as_ref());
        if let Err(wait_ms) = self.store.take_rates(&rates, now).await? {
            return Err(slowed("Too many failed sign-ins: wait a moment before trying again", wait_ms));
        }
        let user = match Email::parse(email) {
            Ok(email) => self.store.user_by_email(&email).await?,
            Err(_) => None,
        };
        let stored = user.as_ref().and_then(|u| u.password.clone());
        let right = verify_password(stored.clone().unwrap_or_else(|| PasswordHash::decoy().clone()), password).await? && stored.is_some();
        let user = match user {
            Some(user) if right => user,
            // The account's owner and admins see the failures in its
            // activity; the answer says nothing of whether it exists.
            other => {
                let id = other.as_ref().map(|u| u.id.as_str());
                let event = AuditEvent::account(AuditKind::SignInRefused, id, json!({}), client, now);
                self.store.append_audit(&event).await?;
                return Err(Error::SignInRefused);
            }
        };
        self.store.give_back_rates(&rates).await?;
        let due = self.second_factor_due(&user).await?;
        // A browser the user trusts (after a sign-in with two factors)
        // skips the second step; it never approves a payment.
        let trusted = match (due, cookies.trusted) {
            (true, Some(secret)) => self.store.use_trusted_browser(&secret.hash(), &user.id, now).await?,
            _ => false,
        };
        let (stage, via) = if due && trusted {
            (Stage::SignedIn, Some("trusted_browser"))
        } else if due {
            (Stage::SecondFactor, None)
        } else if self.two_factor_forced(&user).await? {
            (Stage::Enrol, None)
        } else {
            (Stage::SignedIn, None)
        };
        let device_cookie = self.device_key.issue(email)?;
        // A trusted browser stands in for the second step, not for a
        // factor: binding one from this session asks for it (a step-up).
        let current = self.open(user, stage, cookies.session, via, Proofs::password(now), client).await?;
        Ok(PasswordSignIn { current, device_cookie })
    }

    /// Whether signing in needs a second step: the user has a second factor.
    async fn second_factor_due(&self, user: &UserRecord) -> Result<bool> {
        Ok(!self.second_factors(user).await?.is_empty())
    }

    async fn two_factor_forced(&self, user: &UserRecord) -> Result<bool> {
        Ok(self.store.company(&user.company_id).await?.is_some_and(|c| c.two_factor == TwoFactorPolicy::Forced))
    }

    /// What the user can sign in with as a second step. Each is a way
    /// through `second_step_done` (`trusted.rs`): the authenticator app
    /// (and its recovery codes), a passkey, the paired phone's
    /// confirmation (`confirmations.rs`).
    async fn second_factors(&self, user: &UserRecord) -> Result<Vec<String>> {
        let mut factors = Vec::new();
        if self.store.totp_of_user(&user.id).await?.is_some_and(|t| t.confirmed_at.is_some()) {
            factors.push("totp".to_owned());
            if self.store.recovery_codes_left(&user.id).await? > 0 {
                factors.push("recovery_code".to_owned());
            }
        }
        if !self.store.passkeys_of_user(&user.id).await?.is_empty() {
            factors.push("passkey".to_owned());
        }
        if self.store.paired_phone_of_user(&user.id).await?.is_some() {
            factors.push("paired_phone".to_owned());
        }
        Ok(factors)
    }

    /// A new session for `user` at `stage`, replacing `previous`; `via`:
    /// what completed the sign-in besides the password.
    /// `proofs`: the factors it proved, and when.
    async fn open(
        &self,
        user: UserRecord,
        stage: Stage,
        previous: Option<&Secret>,
        via: Option<&str>,
        proofs: Proofs,
        client: &ClientInfo,
    ) -> Result<Current> {
        let now = self.clock.now();
        let token = Secret::generate()?;
        let new =
            NewBrowserSession { token_hash: token.hash(), user_id: &user.id, stage, replaces: previous.map(Secret::hash), proofs, now };
        let detail = json!({"stage": stage.as_str(), "via": via});
        // Signed in once, when the sign-in completes; the password step of
        // a two-step sign-in is what it is.
        let kind = if stage == Stage::SignedIn { AuditKind::SignedIn } else { AuditKind::PasswordStep };
        let event = AuditEvent::account(kind, Some(&user.id), detail, client, now);
        self.store.open_browser_session(new, &event).await?;
        let session = BrowserSession { user_id: user.id.clone(), stage, created_at: now, last_seen_at: now, proofs };
        Ok(Current { token, session, user })
    }

    /// The live session behind `token`. `touch`: this request counts as
    /// activity (every request but the page's own status checks).
    pub async fn current(&self, token: Secret, touch: bool) -> Result<Current> {
        // A cookie whose session is over: say why, rather than a bare sign-in.
        let session = self.store.browser_session(&token.hash(), self.liveness(), touch).await?.ok_or(Error::SessionEnded)?;
        // A user is never deleted while signed in (sessions cascade); were
        // one to vanish, the session is as good as over.
        let user = self.store.user(&session.user_id).await?.ok_or(Error::NotSignedIn)?;
        Ok(Current { token, session, user })
    }

    /// The session as the page sees it.
    pub async fn view(&self, current: &Current) -> Result<shared::AccountSession> {
        let second_factors = match current.session.stage {
            Stage::SecondFactor => self.second_factors(&current.user).await?,
            Stage::Enrol | Stage::SignedIn => Vec::new(),
        };
        let now = self.clock.now().0;
        let idle_end = current.session.last_seen_at.0 + IDLE_MS;
        let age_end = current.session.created_at.0 + MAX_AGE_MS;
        let left_ms = idle_end.min(age_end).saturating_sub(now).max(0);
        Ok(shared::AccountSession {
            user: shared::AccountUser {
                id: current.user.id.clone(),
                email: current.user.email.as_ref().map(|e| e.as_str().to_owned()),
                display_name: current.user.display_name.clone(),
                role: current.user.role.as_str().to_owned(),
            },
            stage: match current.session.stage {
                Stage::SecondFactor => shared::SignInStage::SecondFactor,
                Stage::Enrol => shared::SignInStage::Enrol,
                Stage::SignedIn => shared::SignInStage::SignedIn,
            },
            csrf_token: csrf::token_for(&current.token),
            idle_timeout_secs: u64::try_from(IDLE_MS / 1_000).unwrap_or(0),
            expires_in_secs: u64::try_from(left_ms / 1_000).unwrap_or(0),
            second_factors,
        })
    }

    pub async fn sign_out(&self, current: &Current, client: &ClientInfo) -> Result<()> {
        let event = AuditEvent::account(AuditKind::SignedOut, Some(&current.user.id), json!({}), client, self.clock.now());
        self.store.end_browser_session(&current.token.hash(), &event).await?;
        Ok(())
    }

    /// Ends every session of the user, this one included.
    pub async fn sign_out_everywhere(&self, current: &Current, client: &ClientInfo) -> Result<u64> {
        let now = self.clock.now();
        let event = AuditEvent::account(AuditKind::SignedOutEverywhere, Some(&current.user.id), json!({}), client, now);
        Ok(self.store.end_browser_sessions_of_user(&current.user.id, &event).await?)
    }
}

/// The two rates an attempt takes from: its account's (the email as typed,
/// trimmed and lower-cased, hashed: no address in a rate key), or, from a
/// known device, that device's own budget for the account; and its
/// client's.
fn attempt_rates(email: &str, client: &ClientInfo, device: Option<&device::KnownDevice>) -> Vec<(String, Rate)> {
    let account = Sha256::digest(email.trim().to_lowercase().as_bytes());
    let account: String = account.iter().map(|b| format!("{b:02x}")).collect();
    let account = match device {
        Some(device) => format!("sign_in:account:{account}:device:{}", device.id()),
        None => format!("sign_in:account:{account}"),
    };
    vec![(account, PER_ACCOUNT), (client_rate_key(client), PER_CLIENT)]
}

fn client_rate_key(client: &ClientInfo) -> String {
    format!("sign_in:client:{}", client.rate_key())
}

/// A sign-in slowed down: wait `wait_ms` (whole seconds, at least one).
fn slowed(message: &'static str, wait_ms: i64) -> Error {
    let retry_after_secs = u64::try_from(wait_ms).map_or(1, |ms| ms.div_ceil(1_000).max(1));
    Error::TooManyRequests { code: shared::error_code::SIGN_IN_SLOWED, message, retry_after_secs }
}

/// The page's name of a factor (a passkey by its name, if it has one).
fn factor_words(factor: &str, name: Option<&str>) -> String {
    match (factor, name) {
        ("passkey", Some(name)) => format!("a passkey (\"{name}\")"),
        ("passkey", None) => "a passkey".to_owned(),
        _ => "an authenticator app".to_owned(),
    }
}

/// Argon2 is slow on purpose: on the blocking pool, off the async workers,
/// a bounded number at once (see [`CheckGate`]).
async fn verify_password(hash: PasswordHash, candidate: &str) -> Result<bool> {
    match CheckGate::shared().verify(hash, candidate).await {
        Ok(Some(right)) => Ok(right),
        Ok(None) => Err(Error::Internal("the password check failed".into())),
        Err(busy) => Err(busy.into()),
    }
}
