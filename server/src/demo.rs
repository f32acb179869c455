//! `passgate demo`: the sandbox's demo company, user, admin and partners,
//! created once; every run issues fresh access tokens and passwords.

use base64::Engine;
use shared::DemoCredentials;

use crate::clock::Millis;
use crate::config::{Config, Mode};
use crate::email::Email;
use crate::error::{Error, Result};
use crate::model::Role;
use crate::password::{Password, PasswordHash};
use crate::phone::Phone;
use crate::store::{CredentialsSet, Store};
use crate::token::Secret;

pub const DEMO_COMPANY: &str = "Demo Company SAS";
pub const DEMO_PHONE: &str = "+33612345678";
pub const DEMO_EMBED_PARTNER: &str = "Acme Embedded Finance";
pub const DEMO_PARTNER: &str = "Demo Accounting App";
pub const DEMO_EMAIL: &str = "camille.martin@demo.passgate.test";
pub const DEMO_ADMIN_PHONE: &str = "+33612345600";
pub const DEMO_ADMIN_EMAIL: &str = "admin@demo.passgate.test";

/// Creates the demo data if missing, and returns fresh tokens and passwords.
pub async fn demo_credentials(store: &Store, now: Millis) -> Result<DemoCredentials> {
    let passwords = DemoPasswords { user: DemoPassword::fresh().await?, admin: DemoPassword::fresh().await? };
    demo_credentials_with(store, now, &passwords).await
}

/// The demo user's and admin's passwords, hashed.
#[derive(Clone)]
pub struct DemoPasswords {
    pub user: DemoPassword,
    pub admin: DemoPassword,
}

/// A fresh random password and its argon2 hash. (The test harness makes
/// one pair per run, not per test: two hashes per test were most of a
/// test's set-up.)
#[derive(Clone)]
pub struct DemoPassword {
    plain: String,
    hash: PasswordHash,
}

impl DemoPassword {
    pub async fn fresh() -> Result<Self> {
        tokio::task::spawn_blocking(Self::fresh_blocking).await.map_err(|e| Error::Internal(e.to_string()))?
    }

    /// [`DemoPassword::fresh`], on the calling thread (argon2: slow on purpose).
    pub fn fresh_blocking() -> Result<Self> {
        // 128 random bits in base64url: far past every guessability check.
        let plain = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        let password = Password::parse(&plain, &[]).map_err(|e| Error::Internal(e.to_string()))?;
        let hash = PasswordHash::new(&password).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(DemoPassword { plain, hash })
    }
}

/// [`demo_credentials`] with these passwords.
pub async fn demo_credentials_with(store: &Store, now: Millis, passwords: &DemoPasswords) -> Result<DemoCredentials> {
    let demo = ensure_demo(store, now).await?;
    let embed_token = Secret::generate()?;
    let plain_token = Secret::generate()?;
    store.insert_access_token(&embed_token.hash(), &demo.embed_partner, &demo.user, now).await?;
    store.insert_access_token(&plain_token.hash(), &demo.partner, &demo.user, now).await?;
    give_credentials(store, &demo.user, DEMO_EMAIL, Role::Member, &passwords.user).await?;
    give_credentials(store, &demo.admin, DEMO_ADMIN_EMAIL, Role::Admin, &passwords.admin).await?;
    Ok(DemoCredentials {
        user_phone: DEMO_PHONE.to_owned(),
        embed_partner_token: embed_token.expose().to_owned(),
        partner_token: plain_token.expose().to_owned(),
        user_email: DEMO_EMAIL.to_owned(),
        user_password: passwords.user.plain.clone(),
        admin_email: DEMO_ADMIN_EMAIL.to_owned(),
        admin_password: passwords.admin.plain.clone(),
    })
}

/// Sets the password (and the email and role) of the user.
async fn give_credentials(store: &Store, user_id: &str, email: &str, role: Role, password: &DemoPassword) -> Result<()> {
    let email = Email::parse(email).map_err(|e| Error::Internal(e.to_string()))?;
    match store.set_credentials(user_id, &email, &password.hash, role).await? {
        CredentialsSet::Yes => Ok(()),
        CredentialsSet::EmailInUse => Err(Error::Internal(format!("{} belongs to another user", email.as_str()))),
    }
}

/// The demo's records.
pub struct Demo {
    pub user: String,
    pub admin: String,
    pub embed_partner: String,
    pub partner: String,
}

/// Creates the demo company, user, admin and partners if missing.
/// Idempotent.
pub async fn ensure_demo(store: &Store, now: Millis) -> Result<Demo> {
    let phone = |number| Phone::parse(number).map_err(|e| Error::Internal(e.to_string()));
    let company = store.ensure_company(DEMO_COMPANY, now).await?;
    Ok(Demo {
        user: store.ensure_user(&company, &phone(DEMO_PHONE)?, "Camille Martin", now).await?,
        admin: store.ensure_user(&company, &phone(DEMO_ADMIN_PHONE)?, "Alex Dupont", now).await?,
        embed_partner: store.ensure_partner(DEMO_EMBED_PARTNER, true, now).await?,
        partner: store.ensure_partner(DEMO_PARTNER, false, now).await?,
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Sandbox => "sandbox",
        Mode::Production => "production",
    }
}

/// A database remembers the mode it was first served in, and is served in
/// that mode only: a sandbox on a production database would show its
/// users' SMS at `/dev/sms` and take the mock method; a production server
/// on a sandbox database would accept the demo partners' printed tokens.
pub async fn check_database_mode(config: &Config, store: &Store) -> anyhow::Result<()> {
    let wanted = mode_name(config.mode);
    let recorded = store.claim_mode(wanted).await?;
    if recorded != wanted {
        anyhow::bail!(
            "this database belongs to a {recorded} Passgate and will not be served in {wanted} mode: use PASSGATE_MODE={recorded}, or give {wanted} a database of its own"
        );
    }
    Ok(())
}

/// `passgate demo` writes demo users and partners: never into production.
pub async fn refuse_production(config: &Config, store: &Store) -> anyhow::Result<()> {
    if !config.sandbox() {
        anyhow::bail!("passgate demo creates demo users and tokens: it runs in sandbox mode only");
    }
    check_database_mode(config, store).await
}
