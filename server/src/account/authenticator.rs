//! The authenticator app as a factor: set-up (a sealed key, pending until
//! a code confirms it, then recovery codes shown once) and the second step
//! of a sign-in (a code, or a recovery code).

use serde_json::json;

use super::totp::{self, RecoveryCode, RecoveryKey, TotpKey};
use super::{Accounts, Current, SecondStep};
use crate::binding::Purpose;
use crate::error::{Error, Result};
use crate::model::{lock_after, AuditEvent, AuditKind, ClientInfo, Stage, TotpAcceptance, TotpAttempt, TotpCounter};
use crate::notify::sms::OutgoingSms;
use shared::error_code as code;

/// Confirming a pending app: its recovery codes' hashes, and the SMS that
/// tells the user.
#[derive(Debug, Clone, Copy)]
pub(super) struct Confirming<'a> {
    codes: &'a [crate::token::SecretHash],
    notice: &'a OutgoingSms,
}

/// What the user scans or types into their app: the key three times
/// over (itself, the `otpauth://` URI, the QR code), so its `Debug` shows
/// none of them.
pub struct TotpSetup {
    pub key: TotpKey,
    pub otpauth_uri: String,
    pub qr_svg: String,
    /// This app replaces the user's confirmed one (which works until a
    /// code of this one confirms it).
    pub replacing: bool,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSetup").field("key", &self.key).field("replacing", &self.replacing).finish_non_exhaustive()
    }
}

impl Accounts {
    /// A new key for the user's app, pending until [`Accounts::confirm_totp`]:
    /// their first, or one that replaces the app they have (lost, or on
    /// an old phone). Binding a factor: two factors proven first
    /// (`crate::binding`; the phone stands in for a lost app).
    pub async fn start_totp(&self, current: &Current) -> Result<TotpSetup> {
        let replacing = self.has_confirmed_app(current).await?;
        let purpose = if replacing { Purpose::ReplaceApp } else { Purpose::Bind };
        self.require_binding(current, purpose).await?;
        let key = TotpKey::generate()?;
        let account = current.user.email.as_ref().map_or(current.user.display_name.as_str(), |e| e.as_str());
        let otpauth_uri = key.otpauth_uri(account).map_err(|e| Error::Internal(e.to_string()))?;
        let qr_svg = totp::qr_svg(&otpauth_uri).map_err(|e| Error::Internal(e.to_string()))?;
        let sealed = self.sealing.seal(key.as_bytes(), &current.user.id).map_err(|e| Error::Internal(e.to_string()))?;
        let (user_id, now) = (&current.user.id, self.clock.now());
        let stored = if replacing {
            self.store.begin_totp_replacement(user_id, &sealed, now).await?
        } else {
            self.store.begin_totp(user_id, &sealed, now).await?
        };
        if !stored {
            // The app was confirmed, or removed, meanwhile (another tab).
            return Err(Error::Conflict {
                code: code::TOTP_CHANGED,
                message: "Your authenticator app changed meanwhile: reload the page and start again",
            });
        }
        Ok(TotpSetup { key, otpauth_uri, qr_svg, replacing })
    }

    /// Confirms the pending app with one of its codes; returns the
    /// recovery codes (their hashes only are kept; any earlier ones stop
    /// working) and, when this set-up was the one the company's policy
    /// asked for, the session that moved on to signed in. A replacing
    /// app takes the old one's place.
    pub async fn confirm_totp(&self, current: &Current, code: &str, client: &ClientInfo) -> Result<(Vec<RecoveryCode>, Option<Current>)> {
        let app = self.store.totp_of_user(&current.user.id).await?;
        let replacing = app.is_some_and(|app| app.confirmed_at.is_some() && app.replacing_since.is_some());
        let (purpose, counter, kind) = if replacing {
            (Purpose::ReplaceApp, TotpCounter::Replacement, AuditKind::FactorReplaced)
        } else {
            (Purpose::Bind, TotpCounter::Pending, AuditKind::FactorAdded)
        };
        self.require_binding(current, purpose).await?;
        let (codes, hashes) = self.new_recovery_codes(current)?;
        let event = self.factor_event(kind, current, "totp", client);
        let now = self.clock.now();
        let phone = current.user.phone.clone();
        let sms = if replacing {
            OutgoingSms::app_replaced(phone, &self.security_page, now, self.outbox_copy.clone())
        } else {
            OutgoingSms::factor_added(phone, "an authenticator app", &self.security_page, now, self.outbox_copy.clone())
        };
        self.check_totp(current, code, counter, Some(Confirming { codes: &hashes, notice: &sms }), event, client).await?;
        self.deliver(&sms).await;
        let next = match current.session.stage {
            Stage::Enrol => {
                let proofs = current.session.proofs.with_possession(now);
                Some(self.open(current.user.clone(), Stage::SignedIn, Some(&current.token), Some("totp"), proofs, client).await?)
            }
            Stage::SecondFactor | Stage::SignedIn => None,
        };
        Ok((codes, next))
    }

    /// New recovery codes for the user's app; the old ones stop working.
    /// Binding-grade: two factors proven within five minutes.
    pub async fn renew_recovery_codes(&self, current: &Current, client: &ClientInfo) -> Result<Vec<RecoveryCode>> {
        if !self.has_confirmed_app(current).await? {
            return Err(not_set_up());
        }
        self.require_binding(current, Purpose::Bind).await?;
        let (codes, hashes) = self.new_recovery_codes(current)?;
        let now = self.clock.now();
        let sms = OutgoingSms::recovery_codes_renewed(current.user.phone.clone(), &self.security_page, now, self.outbox_copy.clone());
        let event = self.factor_event(AuditKind::RecoveryCodesRenewed, current, "recovery_code", client);
        if !self.store.renew_recovery_codes(&current.user.id, &hashes, &sms, &event).await? {
            return Err(not_set_up());
        }
        self.deliver(&sms).await;
        Ok(codes)
    }

    async fn has_confirmed_app(&self, current: &Current) -> Result<bool> {
        Ok(self.store.totp_of_user(&current.user.id).await?.is_some_and(|app| app.confirmed_at.is_some()))
    }

    /// A fresh set of recovery codes, and the MACs that are kept of them.
    fn new_recovery_codes(&self, current: &Current) -> Result<(Vec<RecoveryCode>, Vec<crate::token::SecretHash>)> {
        let codes = (0..totp::RECOVERY_CODES).map(|_| RecoveryCode::generate()).collect::<Result<Vec<_>, _>>()?;
        let key = RecoveryKey::new(&self.sealing);
        let hashes = codes.iter().map(|c| key.mac(&current.user.id, c.expose())).collect();
        Ok((codes, hashes))
    }

    /// The second step with an app's code: the session moves on under a
    /// new secret; with `trust`, the user trusts this browser.
    pub async fn sign_in_with_totp(&self, current: &Current, code: &str, trust: bool, client: &ClientInfo) -> Result<SecondStep> {
        self.second_step_due(current)?;
        let event = self.factor_event(AuditKind::FactorUsed, current, "totp", client);
        self.check_totp(current, code, TotpCounter::App, None, event, client).await?;
        self.second_step_done(current, "totp", trust, client).await
    }

    /// The second step with a recovery code (each works once).
    pub async fn sign_in_with_recovery_code(&self, current: &Current, code: &str, trust: bool, client: &ClientInfo) -> Result<SecondStep> {
        self.second_step_due(current)?;
        let user_id = &current.user.id;
        let (_, failures) = self.reserve_attempt(user_id, TotpCounter::RecoveryCodes).await?;
        let event = self.factor_event(AuditKind::FactorUsed, current, "recovery_code", client);
        let now = self.clock.now();
        let kept = RecoveryKey::new(&self.sealing).mac(user_id, code);
        let used = self.store.use_recovery_code(user_id, &kept, now, &event).await?
            || self.store.use_recovery_code(user_id, &RecoveryCode::legacy_hash_of(code), now, &event).await?;
        if !used {
            return Err(self.refuse(current, "recovery_code", failures, client).await);
        }
        self.second_step_done(current, "recovery_code", trust, client).await
    }

    pub(super) fn second_step_due(&self, current: &Current) -> Result<()> {
        match current.session.stage {
            Stage::SecondFactor => Ok(()),
            Stage::Enrol => Err(setup_required()),
            Stage::SignedIn => Err(Error::Conflict { code: code::ALREADY_SIGNED_IN, message: "You are signed in already" }),
        }
    }

    /// Reserves an attempt on `counter`, checks the code against its key
    /// (the confirmed app's, a pending one's, or the replacing one's, the
    /// last two `confirming`), and accepts its step once, for the key it
    /// checked.
    pub(super) async fn check_totp(
        &self,
        current: &Current,
        code: &str,
        counter: TotpCounter,
        confirming: Option<Confirming<'_>>,
        event: AuditEvent,
        client: &ClientInfo,
    ) -> Result<()> {
        let user_id = &current.user.id;
        if counter == TotpCounter::App {
            self.refuse_a_used_code(user_id, code).await?;
        }
        let (sealed_key, failures) = self.reserve_attempt(user_id, counter).await?;
        let key = TotpKey::from_bytes(self.sealing.open(&sealed_key, user_id).map_err(|e| Error::Internal(e.to_string()))?);
        let now = self.clock.now();
        let step = key.matching_step(code, now).and_then(|s| i64::try_from(s).ok());
        let accepted = match step {
            Some(step) => {
                let acceptance = TotpAcceptance {
                    user_id,
                    sealed_key: &sealed_key,
                    step,
                    now,
                    confirming: confirming.map(|c| c.codes),
                    notice: confirming.map(|c| c.notice),
                    replacing: counter == TotpCounter::Replacement,
                };
                self.store.accept_totp_code(acceptance, &event).await?
            }
            None => false,
        };
        if accepted {
            Ok(())
        } else {
            Err(self.refuse(current, "totp", failures, client).await)
        }
    }

    /// A right code of a step already accepted (the user signed in with it
    /// a moment ago) is no guess: it is told apart and spends no attempt.
    /// (Only the holder of the app knows it; a wrong code goes on to be
    /// counted.)
    async fn refuse_a_used_code(&self, user_id: &str, code: &str) -> Result<()> {
        let Some(app) = self.store.totp_of_user(user_id).await?.filter(|app| app.confirmed_at.is_some()) else {
            return Ok(());
        };
        let key = TotpKey::from_bytes(self.sealing.open(&app.sealed_key, user_id).map_err(|e| Error::Internal(e.to_string()))?);
        let used = key.matching_step(code, self.clock.now()).and_then(|s| i64::try_from(s).ok()).is_some_and(|step| step <= app.last_step);
        if used {
            return Err(Error::Conflict {
                code: code::TOTP_CODE_USED,
                message: "This code was just used: wait for the next one in your app (a new code every 30 seconds)",
            });
        }
        Ok(())
    }

    /// One attempt on a counter of the user's app: its sealed key and the
    /// failures since the last accepted code, this one counted.
    async fn reserve_attempt(&self, user_id: &str, counter: TotpCounter) -> Result<(String, u32)> {
        match self.store.reserve_totp_attempt(user_id, counter, totp::MAX_FAILURES, totp::LOCK_MS, self.clock.now()).await? {
            TotpAttempt::Reserved { sealed_key, failures } => Ok((sealed_key, failures)),
            TotpAttempt::Locked { until } => Err(self.locked(until)),
            TotpAttempt::Absent => Err(not_set_up()),
        }
    }

    /// A wrong (or reused) code: logged; the answer says how many are left.
    /// Each lock is also told to the user by SMS: guesses at their codes
    /// mean someone has their password.
    async fn refuse(&self, current: &Current, factor: &str, failures: u32, client: &ClientInfo) -> Error {
        let event = self.factor_event(AuditKind::FactorRefused, current, factor, client);
        let Some(lock_ms) = lock_after(failures, totp::MAX_FAILURES, totp::LOCK_MS) else {
            if let Err(e) = self.store.append_audit(&event).await {
                return e.into();
            }
            return Error::CodeRefused { attempts_left: totp::MAX_FAILURES - failures % totp::MAX_FAILURES };
        };
        let now = self.clock.now();
        let what = if factor == "recovery_code" { "recovery codes" } else { "authenticator app" };
        let sms = OutgoingSms::codes_locked(
            current.user.phone.clone(),
            failures,
            what,
            lock_ms,
            &self.security_page,
            now,
            self.outbox_copy.clone(),
        );
        if let Err(e) = self.store.append_notice(&sms, &event).await {
            return e.into();
        }
        self.deliver(&sms).await;
        self.locked(now.plus_millis(lock_ms))
    }

    fn locked(&self, until: crate::clock::Millis) -> Error {
        let wait_ms = until.0.saturating_sub(self.clock.now().0).max(1);
        Error::TooManyRequests {
            code: code::TOTP_LOCKED,
            message: "Too many wrong codes: your authenticator app is locked for a while",
            retry_after_secs: u64::try_from(wait_ms).map_or(1, |ms| ms.div_ceil(1_000)),
        }
    }

    pub(super) fn factor_event(&self, kind: AuditKind, current: &Current, factor: &str, client: &ClientInfo) -> AuditEvent {
        AuditEvent::account(kind, Some(&current.user.id), json!({"factor": factor}), client, self.clock.now())
    }
}

fn not_set_up() -> Error {
    Error::Conflict { code: code::TOTP_NOT_SET_UP, message: "Set up an authenticator app first" }
}

pub fn setup_required() -> Error {
    Error::NotAllowed {
        code: code::SECOND_FACTOR_SETUP_REQUIRED,
        message: "Your company asks for a second factor: set up an authenticator app first",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::totp::{qr_svg, TotpKey};

    #[test]
    fn a_setups_debug_shows_no_key_uri_or_qr_code() {
        let key = TotpKey::generate().unwrap();
        let otpauth_uri = key.otpauth_uri("camille@example.com").unwrap();
        let qr_svg = qr_svg(&otpauth_uri).unwrap();
        let secret = key.base32();
        let setup = TotpSetup { key, otpauth_uri, qr_svg, replacing: false };
        let shown = format!("{setup:?}");
        assert!(!shown.contains(&secret) && !shown.contains("otpauth") && !shown.contains("<svg"), "{shown}");
        assert!(shown.contains("replacing: false"), "{shown}");
    }
}

/// What `passgate secrets reseal` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resealed {
    /// Moved to the current key.
    pub resealed: usize,
    /// Sealed by the current key already.
    pub current: usize,
    /// Changed while being moved (a new app set up): sealed by the
    /// current key, as every new value is.
    pub changed: usize,
}

/// Re-seals every authenticator-app key under the ring's current key,
/// so that the earlier keys are no longer needed to open them. A key
/// that no key of the ring opens stops it: nothing is lost or skipped
/// silently.
pub async fn reseal_authenticator_keys(store: &crate::store::Store, key: &crate::sealed::SecretsKey) -> Result<Resealed> {
    let mut done = Resealed::default();
    for sealed in store.sealed_totp_keys().await? {
        if !key.needs_resealing(&sealed.sealed) {
            done.current += 1;
            continue;
        }
        let secret = key
            .open(&sealed.sealed, &sealed.user_id)
            .map_err(|e| Error::Internal(format!("the authenticator app of user {}: {e}", sealed.user_id)))?;
        let resealed = key.seal(&secret, &sealed.user_id).map_err(|e| Error::Internal(e.to_string()))?;
        if store.reseal_totp_key(&sealed, &resealed).await? {
            done.resealed += 1;
        } else {
            done.changed += 1;
        }
    }
    Ok(done)
}
