//! Company administration (seed 001): the two-factor policy, the report of
//! who has which factors and when each was last used, and removing a
//! user's factor (a lost phone: the user then sets up a new one). For the
//! company's admins only, over their own company only, and never over
//! their own factors (another admin resets those).

use serde_json::json;

use super::security::FactorRef;
use super::{Accounts, Current};
use crate::error::{Error, Result};
use crate::model::{
    AuditEvent, AuditKind, ClientInfo, Company, PairedPhone, PasskeySummary, Role, TotpFactor, TwoFactorPolicy, UnpairedBy, UserRecord,
};
use crate::store::{Removed, Scope};
use shared::error_code as code;

/// One user's factors, as the report lists them.
#[derive(Debug)]
pub struct UserFactors {
    pub user: UserRecord,
    /// A confirmed authenticator app.
    pub totp: Option<TotpFactor>,
    pub passkeys: Vec<PasskeySummary>,
    pub phone: Option<PairedPhone>,
}

#[derive(Debug)]
pub struct CompanyReport {
    pub company: Company,
    pub users: Vec<UserFactors>,
}

impl Accounts {
    /// "Users within a company": each user and their factors.
    pub async fn company_report(&self, current: &Current) -> Result<CompanyReport> {
        require_admin(current)?;
        let company_id = &current.user.company_id;
        let company = self.store.company(company_id).await?.ok_or(Error::NotFound("No such company"))?;
        let users = self.store.users_of_company(company_id).await?;
        let mut apps = self.store.totp_of_company(company_id).await?;
        let mut passkeys = self.store.passkey_summaries(Scope::Company(company_id)).await?;
        let mut phones = self.store.paired_phones_of_company(company_id).await?;
        let users = users
            .into_iter()
            .map(|user| {
                let totp = apps.iter().position(|(id, t)| *id == user.id && t.confirmed_at.is_some()).map(|i| apps.swap_remove(i).1);
                let (own, rest): (Vec<_>, Vec<_>) = passkeys.drain(..).partition(|p| p.user_id == user.id);
                passkeys = rest;
                let phone = phones.iter().position(|p| p.user_id == user.id).map(|i| phones.swap_remove(i));
                UserFactors { user, totp, passkeys: own, phone }
            })
            .collect();
        Ok(CompanyReport { company, users })
    }

    pub async fn set_two_factor_policy(&self, current: &Current, policy: TwoFactorPolicy, client: &ClientInfo) -> Result<Company> {
        require_admin(current)?;
        let detail = json!({"two_factor": policy.as_str()});
        let event = AuditEvent::account(AuditKind::PolicyChanged, Some(&current.user.id), detail, client, self.clock.now());
        self.store.set_two_factor_policy(&current.user.company_id, policy, &event).await?;
        self.store.company(&current.user.company_id).await?.ok_or(Error::NotFound("No such company"))
    }

    /// Removes a user's authenticator app (and its recovery codes); the
    /// user's browser sessions and trusted browsers end with it.
    pub async fn remove_user_totp(&self, current: &Current, user_id: &str, client: &ClientInfo) -> Result<()> {
        let user = self.managed_user(current, user_id).await?;
        let detail = json!({"factor": "totp", "by": current.user.id, "by_admin": true});
        let what = super::factor_words("totp", None);
        let removed = self.remove_factor(&user, FactorRef::Totp, detail, &what, true, None, false, client).await?;
        match removed {
            Removed::Yes => Ok(()),
            Removed::Absent | Removed::LastFactor => Err(Error::NotFound("This user has no authenticator app")),
        }
    }

    pub async fn remove_user_passkey(&self, current: &Current, user_id: &str, passkey_id: &str, client: &ClientInfo) -> Result<()> {
        let user = self.managed_user(current, user_id).await?;
        match self.remove_passkey_of(&user, passkey_id, Some(&current.user), None, false, client).await? {
            Removed::Yes => Ok(()),
            Removed::Absent | Removed::LastFactor => Err(Error::NotFound("This user has no such passkey")),
        }
    }

    /// Ends a user's paired phone (a lost or replaced phone): its passkey
    /// and device credential stop working at once.
    pub async fn reset_user_phone(&self, current: &Current, user_id: &str, client: &ClientInfo) -> Result<()> {
        let user = self.managed_user(current, user_id).await?;
        let phone = self.store.paired_phone_of_user(&user.id).await?.ok_or(Error::NotFound("This user has no paired phone"))?;
        self.unpair(&user, &phone, UnpairedBy::Admin(current.user.id.clone()), client).await.map_err(|e| match e {
            // Unpaired meanwhile: as good as absent.
            Error::PhoneNotPaired => Error::NotFound("This user has no paired phone"),
            other => other,
        })
    }

    /// A user of the admin's company other than the admin. Another
    /// company's user is answered as unknown: nothing tells it exists.
    async fn managed_user(&self, current: &Current, user_id: &str) -> Result<UserRecord> {
        require_admin(current)?;
        let user =
            self.store.user(user_id).await?.filter(|u| u.company_id == current.user.company_id).ok_or(Error::NotFound("No such user"))?;
        if user.id == current.user.id {
            return Err(Error::NotAllowed { code: code::OWN_FACTORS, message: "Another admin of your company resets your own factors" });
        }
        Ok(user)
    }
}

fn require_admin(current: &Current) -> Result<()> {
    match current.user.role {
        Role::Admin => Ok(()),
        Role::Member => Err(Error::NotAllowed { code: code::ADMIN_ONLY, message: "Only your company's admins can do this" }),
    }
}
