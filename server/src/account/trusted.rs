//! Trusted browsers (seed 000): after a sign-in with two factors, the user
//! may trust the browser for 90 days, so that the password alone signs in
//! there. The browser keeps a random secret in a cookie; the server keeps
//! its hash. Listed with their last use, revocable one by one or all;
//! trust never approves a payment (the approval page never reads it).

use serde_json::json;

use super::{Accounts, Current};
use crate::binding::Proofs;
use crate::clock::Millis;
use crate::error::{Error, Result};
use crate::model::{AuditEvent, AuditKind, ClientInfo, NewTrustedBrowser, Stage, TrustedBrowser};
use crate::token::Secret;

/// How long a browser stays trusted.
pub const TRUST_MS: i64 = 90 * 24 * 60 * Millis::MINUTE;

/// A finished second step: the new session and, if the user asked, the
/// secret of the newly trusted browser (for its cookie).
#[derive(Debug)]
pub struct SecondStep {
    pub current: Current,
    pub trusted: Option<Secret>,
}

impl Accounts {
    /// The second step is done: possession is proven now (a passkey, with
    /// its user verification, proves knowledge too).
    pub(super) async fn second_step_done(&self, current: &Current, via: &str, trust: bool, client: &ClientInfo) -> Result<SecondStep> {
        let now = self.clock.now();
        // A passkey's user verification, or the paired phone's (its
        // possession besides), proves knowledge or inherence too.
        let proofs =
            if matches!(via, "passkey" | "paired_phone") { Proofs::both(now) } else { current.session.proofs.with_possession(now) };
        let next = self.open(current.user.clone(), Stage::SignedIn, Some(&current.token), Some(via), proofs, client).await?;
        let trusted = if trust { Some(self.trust_browser(&next, client).await?) } else { None };
        Ok(SecondStep { current: next, trusted })
    }

    async fn trust_browser(&self, current: &Current, client: &ClientInfo) -> Result<Secret> {
        let now = self.clock.now();
        let secret = Secret::generate()?;
        let name = browser_name(client.user_agent.as_deref());
        let browser = NewTrustedBrowser {
            token_hash: secret.hash(),
            user_id: &current.user.id,
            name: &name,
            now,
            expires_at: now.plus_millis(TRUST_MS),
        };
        let event = AuditEvent::account(AuditKind::DeviceTrusted, Some(&current.user.id), json!({"name": name}), client, now);
        self.store.add_trusted_browser(browser, &event).await?;
        Ok(secret)
    }

    pub async fn trusted_browsers(&self, current: &Current) -> Result<Vec<TrustedBrowser>> {
        Ok(self.store.trusted_browsers(&current.user.id, self.clock.now()).await?)
    }

    /// Revokes one of the user's trusted browsers, or all (`None`).
    pub async fn revoke_trusted_browsers(&self, current: &Current, browser_id: Option<&str>, client: &ClientInfo) -> Result<u64> {
        let event = AuditEvent::account(
            AuditKind::DeviceRevoked,
            Some(&current.user.id),
            json!({"browser_id": browser_id}),
            client,
            self.clock.now(),
        );
        let revoked = self.store.revoke_trusted_browsers(&current.user.id, browser_id, &event).await?;
        match (browser_id, revoked) {
            (Some(_), 0) => Err(Error::NotFound("No such trusted browser")),
            _ => Ok(revoked),
        }
    }
}

/// "Chrome on Android" from a user agent, for the list (a guess, never a
/// security decision).
pub fn browser_name(user_agent: Option<&str>) -> String {
    let ua = user_agent.unwrap_or_default();
    let browser = [("Edg/", "Edge"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome"), ("Chromium/", "Chromium"), ("Safari/", "Safari")]
        .iter()
        .find(|(token, _)| ua.contains(token))
        .map_or("A browser", |(_, name)| name);
    let system =
        [("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"), ("Mac OS X", "macOS"), ("Windows", "Windows"), ("Linux", "Linux")]
            .iter()
            .find(|(token, _)| ua.contains(token))
            .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_is_named_after_its_kind_and_system() {
        let pixel = "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Mobile Safari/537.36";
        assert_eq!(browser_name(Some(pixel)), "Chrome on Android");
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(browser_name(Some(iphone)), "Safari on iPhone");
        let edge = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36 Edg/130.0";
        assert_eq!(browser_name(Some(edge)), "Edge on Windows");
        assert_eq!(browser_name(None), "A browser");
    }
}
