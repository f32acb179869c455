//! `passgate demo`: the sandbox's demo company, user and partners, created
//! once; every run issues fresh access tokens for them.

use shared::DemoCredentials;

use crate::clock::Millis;
use crate::config::{Config, Mode};
use crate::error::{Error, Result};
use crate::phone::Phone;
use crate::store::Store;
use crate::token::Secret;

pub const DEMO_COMPANY: &str = "Demo Company SAS";
pub const DEMO_PHONE: &str = "+33612345678";
pub const DEMO_EMBED_PARTNER: &str = "Acme Embedded Finance";
pub const DEMO_PARTNER: &str = "Demo Accounting App";

/// Creates the demo data if missing, and returns fresh tokens.
pub async fn demo_credentials(store: &Store, now: Millis) -> Result<DemoCredentials> {
    let phone = Phone::parse(DEMO_PHONE).map_err(|e| Error::Internal(e.to_string()))?;
    let user_id = ensure_demo(store, now).await?;
    let embed = store.ensure_partner(DEMO_EMBED_PARTNER, true, now).await?;
    let plain = store.ensure_partner(DEMO_PARTNER, false, now).await?;
    let embed_token = Secret::generate()?;
    let plain_token = Secret::generate()?;
    store.insert_access_token(&embed_token.hash(), &embed, &user_id, now).await?;
    store.insert_access_token(&plain_token.hash(), &plain, &user_id, now).await?;
    Ok(DemoCredentials {
        user_phone: phone.as_str().to_owned(),
        embed_partner_token: embed_token.expose().to_owned(),
        partner_token: plain_token.expose().to_owned(),
    })
}

/// Creates the demo company, user and partners if missing; returns the
/// user's id. Idempotent.
pub async fn ensure_demo(store: &Store, now: Millis) -> Result<String> {
    let phone = Phone::parse(DEMO_PHONE).map_err(|e| Error::Internal(e.to_string()))?;
    let company = store.ensure_company(DEMO_COMPANY, now).await?;
    let user = store.ensure_user(&company, &phone, "Camille Martin", now).await?;
    store.ensure_partner(DEMO_EMBED_PARTNER, true, now).await?;
    store.ensure_partner(DEMO_PARTNER, false, now).await?;
    Ok(user)
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
