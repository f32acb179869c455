//! What a user sees and manages of their own security: the overview of
//! their factors, their passkeys (rename, remove), and the activity log
//! (their own events, or an admin's company's).

use serde_json::json;

use super::{Accounts, Current};
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, ClientInfo, PasskeySummary, Role, TotpFactor, TwoFactorPolicy, UserRecord};
use crate::notify::sms::OutgoingSms;
use crate::store::{AuditEntry, AuditQuery, FactorNotice, Removal, Removed, Scope};
use crate::token::SecretHash;
use shared::error_code as code;

/// The longest passkey name kept.
pub const PASSKEY_NAME_MAX: usize = 64;
/// Events per page of the activity log, at most.
pub const ACTIVITY_PAGE_MAX: u32 = 100;
/// The categories of events the activity log filters on (the part of an
/// event's kind before its dot).
pub use shared::audit_kind::CATEGORIES as ACTIVITY_CATEGORIES;

/// A factor of a user, to remove.
#[derive(Debug, Clone, Copy)]
pub(super) enum FactorRef<'a> {
    Totp,
    Passkey(&'a str),
}

#[derive(Debug)]
pub struct SecurityOverview {
    pub two_factor: TwoFactorPolicy,
    /// A confirmed authenticator app.
    pub authenticator_app: Option<TotpFactor>,
    pub recovery_codes_left: u32,
    pub passkeys: Vec<PasskeySummary>,
}

/// Whose activity to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityScope {
    Mine,
    /// An admin's whole company.
    Company,
}

impl Accounts {
    pub async fn security_overview(&self, current: &Current) -> Result<SecurityOverview> {
        let user = &current.user;
        let two_factor = self.store.company(&user.company_id).await?.map_or(TwoFactorPolicy::OptIn, |c| c.two_factor);
        let authenticator_app = self.store.totp_of_user(&user.id).await?.filter(|t| t.confirmed_at.is_some());
        let recovery_codes_left = match authenticator_app {
            Some(_) => self.store.recovery_codes_left(&user.id).await?,
            None => 0,
        };
        let passkeys = self.store.passkey_summaries(Scope::User(&user.id)).await?;
        Ok(SecurityOverview { two_factor, authenticator_app, recovery_codes_left, passkeys })
    }

    pub async fn rename_passkey(&self, current: &Current, passkey_id: &str, name: &str) -> Result<()> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > PASSKEY_NAME_MAX || name.chars().any(char::is_control) {
            return Err(Error::Validation {
                field: "name".into(),
                message: format!("1 to {PASSKEY_NAME_MAX} characters, no control characters"),
            });
        }
        if self.store.rename_passkey(&current.user.id, passkey_id, name).await? {
            Ok(())
        } else {
            Err(Error::NotFound("No such passkey"))
        }
    }

    /// Removes one of the user's own passkeys, unless the company forces
    /// two-factor and it is the user's last factor (checked in the removal's
    /// own statement). The user's other sessions and trusted browsers end.
    pub async fn remove_own_passkey(&self, current: &Current, passkey_id: &str, client: &ClientInfo) -> Result<()> {
        let forced = self.store.company(&current.user.company_id).await?.is_some_and(|c| c.two_factor == TwoFactorPolicy::Forced);
        let removed = self.remove_passkey_of(&current.user, passkey_id, None, Some(&current.token.hash()), forced, client).await?;
        match removed {
            Removed::Yes => Ok(()),
            Removed::Absent => Err(Error::NotFound("No such passkey")),
            Removed::LastFactor => Err(Error::Conflict {
                code: code::LAST_FACTOR,
                message: "Your company asks for a second factor: add another before removing your last one",
            }),
        }
    }

    /// Removes `user`'s passkey (`by`: the admin who does, if not the
    /// user), logged by its id, credential id and name, told by SMS.
    pub(super) async fn remove_passkey_of(
        &self,
        user: &UserRecord,
        passkey_id: &str,
        by: Option<&UserRecord>,
        keep_session: Option<&SecretHash>,
        keep_one: bool,
        client: &ClientInfo,
    ) -> Result<Removed> {
        let name = self.store.passkey_summaries(Scope::User(&user.id)).await?.into_iter().find(|p| p.id == passkey_id).map(|p| p.name);
        let Some(name) = name else {
            return Ok(Removed::Absent);
        };
        let credential_id = self
            .store
            .passkeys_of_user(&user.id)
            .await?
            .into_iter()
            .find(|p| p.id == passkey_id)
            .map(|p| super::passkeys::base64_url(p.passkey.cred_id().as_ref()));
        let detail = json!({
            "factor": "passkey",
            "passkey_id": passkey_id,
            "credential_id": credential_id,
            "name": name,
            "by": by.map_or(&user.id, |admin| &admin.id),
            "by_admin": by.is_some(),
        });
        let what = super::factor_words("passkey", name.as_deref());
        self.remove_factor(user, FactorRef::Passkey(passkey_id), detail, &what, by.is_some(), keep_session, keep_one, client).await
    }

    /// The removal of a factor: its audit event and SMS notice, and what
    /// storage made of it (the notice is sent only if it went).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn remove_factor(
        &self,
        user: &UserRecord,
        factor: FactorRef<'_>,
        detail: serde_json::Value,
        what: &str,
        by_admin: bool,
        keep_session: Option<&SecretHash>,
        keep_one: bool,
        client: &ClientInfo,
    ) -> Result<Removed> {
        let now = self.clock.now();
        let audit = AuditEvent::account(AuditKind::FactorRemoved, Some(&user.id), detail, client, now);
        let sms = OutgoingSms::factor_removed(user.phone.clone(), what, by_admin, &self.security_page, now, self.outbox_copy.clone());
        let removal = Removal { user_id: &user.id, notice: FactorNotice { audit: &audit, sms: &sms }, keep_one, keep_session };
        let removed = match factor {
            FactorRef::Totp => self.store.remove_totp(removal).await?,
            FactorRef::Passkey(id) => self.store.remove_passkey(id, removal).await?,
        };
        if removed == Removed::Yes {
            self.deliver(&sms).await;
        }
        Ok(removed)
    }

    /// A page of the activity log, newest first.
    pub async fn activity(
        &self,
        current: &Current,
        scope: ActivityScope,
        category: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let scope = match scope {
            ActivityScope::Mine => Scope::User(&current.user.id),
            ActivityScope::Company if current.user.role == Role::Admin => Scope::Company(&current.user.company_id),
            ActivityScope::Company => {
                return Err(Error::NotAllowed { code: code::ADMIN_ONLY, message: "Only your company's admins see its activity" });
            }
        };
        if let Some(category) = category.filter(|c| !ACTIVITY_CATEGORIES.contains(c)) {
            return Err(Error::Validation {
                field: "category".into(),
                message: format!("{category:?} is none of {ACTIVITY_CATEGORIES:?}"),
            });
        }
        let limit = limit.clamp(1, ACTIVITY_PAGE_MAX);
        Ok(self.store.audit_log(AuditQuery { scope, category, before_id, limit }).await?)
    }
}
