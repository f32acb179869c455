//! Sending SMS. Every SMS is first stored in the outbox, in the same
//! transaction as what it announces; an [`SmsSender`] then delivers it. In
//! sandbox nothing leaves the machine: the outbox keeps the whole message,
//! readable at `/dev/sms`. In production the outbox keeps no secret: the
//! link or code is redacted from the stored copy, and the message as sent
//! exists only in memory, on its way to the provider.

use async_trait::async_trait;

use crate::clock::Millis;
use crate::phone::Phone;

#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingSms {
    pub to: Phone,
    pub body: String,
    /// The approval link the body carries, if any (sandbox outbox helper).
    pub link: Option<String>,
    /// The one-time code the body carries, if any (sandbox outbox helper).
    pub otp: Option<String>,
    pub sent_at: Millis,
    /// What the stored copy keeps.
    pub copy: OutboxCopy,
}

/// What the outbox keeps of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxCopy {
    /// Sandbox: everything, for `/dev/sms`; the row is the delivery.
    Whole,
    /// Production without a provider: the body with its secret replaced,
    /// no link, no code; nothing is sent.
    Redacted,
    /// Production with a provider: the redacted copy, and the message as
    /// it is to be sent sealed under the secrets key, for the sender task
    /// (which forgets it once sent).
    Sealed(SmsSeal),
}

/// The key the outbox seals messages with. `Debug` shows no key.
#[derive(Clone)]
pub struct SmsSeal(pub crate::sealed::SecretsKey);

impl std::fmt::Debug for SmsSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmsSeal(<redacted>)")
    }
}

/// One key is one key (the ring's current one decides).
impl PartialEq for SmsSeal {
    fn eq(&self, other: &Self) -> bool {
        self.0.key_id() == other.0.key_id()
    }
}
impl Eq for SmsSeal {}

impl SmsSeal {
    /// The associated data of a sealed message: it opens only for its
    /// recipient.
    pub fn owner(to: &Phone) -> String {
        format!("sms to {}", to.as_str())
    }
}

/// The outbox's copy of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSms<'a> {
    pub body: std::borrow::Cow<'a, str>,
    pub link: Option<&'a str>,
    pub otp: Option<&'a str>,
    /// For the sender task: the message as sent, sealed.
    pub sealed: Option<String>,
}

const REDACTED: &str = "[redacted]";

/// The body holds secrets (links, codes): `Debug` shows only the recipient.
impl std::fmt::Debug for OutgoingSms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingSms").field("to", &self.to).finish_non_exhaustive()
    }
}

impl OutgoingSms {
    /// The SMS that sends the user to the approval page.
    pub fn approval_link(to: Phone, partner_name: &str, link: String, now: Millis, copy: OutboxCopy) -> Self {
        let body = format!("{partner_name} asks you to approve an operation. Review it here: {link}");
        OutgoingSms { to, body, link: Some(link), otp: None, sent_at: now, copy }
    }

    /// Tells the user a passkey was added to their account, and where to
    /// remove it: a passkey added by someone else is then noticed.
    pub fn passkey_added(to: Phone, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        Self::factor_added(to, "a passkey", security_page, now, copy)
    }

    /// Tells the user a factor (`what`: "a passkey (\"Work laptop\")", "an
    /// authenticator app") was added to their account, and where to remove it.
    pub fn factor_added(to: Phone, what: &str, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let body = format!("Passgate: {what} was added to your account. Not you? Remove it at {security_page} and call your bank.");
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// Tells the user their authenticator app was replaced: the old one
    /// and its recovery codes no longer work.
    pub fn app_replaced(to: Phone, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let body = format!(
            "Passgate: your authenticator app was replaced; the old one and its recovery codes no longer work. \
             Not you? Review your security at {security_page} and call your bank."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// Tells the user new recovery codes were made: the old ones no longer work.
    pub fn recovery_codes_renewed(to: Phone, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let body = format!(
            "Passgate: new recovery codes were made for your account; the old ones no longer work. \
             Not you? Review your security at {security_page} and call your bank."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// Tells the user a factor was removed, by whom, and where to review
    /// what is left.
    pub fn factor_removed(to: Phone, what: &str, by_admin: bool, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let by = if by_admin { " by an admin of your company" } else { "" };
        let body = format!(
            "Passgate: {what} was removed from your account{by}. Not you? Review your security at {security_page} and call your bank."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// The paired phone refused `what` asked from `browser`: whoever
    /// asked has the user's password.
    pub fn refused_on_phone(to: Phone, what: &str, browser: &str, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let body = format!(
            "Passgate: your paired phone refused {what} from {browser}. Not you? Someone has your password: change it, \
             review {security_page} and call your bank."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// Tells the user that `failures` wrong codes locked their `what`
    /// ("authenticator app", "recovery codes") for `lock_ms`: someone
    /// who has their password is guessing.
    pub fn codes_locked(to: Phone, failures: u32, what: &str, lock_ms: i64, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let minutes = lock_ms / Millis::MINUTE;
        let body = format!(
            "Passgate: {failures} wrong codes were entered for your {what}; it is locked for {minutes} minutes. \
             Not you? Someone has your password: change it, review {security_page} and call your bank."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// Wrong codes and link passwords, counted per user, blocked them all.
    pub fn attempts_blocked(to: Phone, failures: u32, block_ms: i64, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let minutes = block_ms / Millis::MINUTE;
        let body = format!(
            "Passgate: {failures} wrong codes or passwords in a row were entered to approve actions in your name; \
             approvals by code or link are blocked for {minutes} minutes. Not you? Call your bank and review {security_page}."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// The user said "this wasn't me" about an approval on their phone:
    /// it was denied; what to do next.
    pub fn approval_reported(to: Phone, partner_name: &str, security_page: &str, now: Millis, copy: OutboxCopy) -> Self {
        let body = format!(
            "Passgate: you reported a request from {partner_name} as not yours; it was denied and your bank was told. \
             Someone may be using your {partner_name} account: change its password, review {security_page} and call your bank."
        );
        OutgoingSms { to, body, link: None, otp: None, sent_at: now, copy }
    }

    /// A code that confirms it is the user before a factor is bound to
    /// their account (`what`: "add a sign-in method to your account",
    /// "replace your authenticator app", "pair this phone"), alive
    /// `lifetime_ms`; the last line lets browsers fill it in.
    pub fn step_up_code(to: Phone, what: &str, code: &str, lifetime_ms: i64, host: &str, now: Millis, copy: OutboxCopy) -> Self {
        let minutes = lifetime_ms / Millis::MINUTE;
        let body = format!(
            "Passgate: your code to {what} is {code}. It expires in {minutes} minutes. \
             Not you? Someone has your password: change it.\n\n@{host} #{code}"
        );
        OutgoingSms { to, body, link: None, otp: Some(code.to_owned()), sent_at: now, copy }
    }

    /// An `sms-otp` code, with what it approves (`what`: the amount and
    /// the payee, PSD2 RTS art. 5). The last line, `@host #code`, lets
    /// browsers fill the code in for the user (the origin-bound one-time
    /// code format).
    pub fn one_time_code(to: Phone, partner_name: &str, what: &str, code: &str, host: &str, now: Millis, copy: OutboxCopy) -> Self {
        let body =
            format!("{partner_name} asks you to {what}. Your code: {code}. It expires in 5 minutes; never share it.\n\n@{host} #{code}");
        OutgoingSms { to, body, link: None, otp: Some(code.to_owned()), sent_at: now, copy }
    }

    /// What the outbox may keep of this message.
    pub fn stored(&self) -> Result<StoredSms<'_>, crate::sealed::SealError> {
        Ok(match &self.copy {
            OutboxCopy::Whole => {
                StoredSms { body: self.body.as_str().into(), link: self.link.as_deref(), otp: self.otp.as_deref(), sealed: None }
            }
            OutboxCopy::Redacted => StoredSms { body: self.redacted().into(), link: None, otp: None, sealed: None },
            OutboxCopy::Sealed(seal) => {
                let sealed = seal.0.seal(self.body.as_bytes(), &SmsSeal::owner(&self.to))?;
                StoredSms { body: self.redacted().into(), link: None, otp: None, sealed: Some(sealed) }
            }
        })
    }

    /// The body with its link and code replaced.
    pub fn redacted(&self) -> String {
        let mut body = self.body.clone();
        for secret in self.link.iter().chain(self.otp.iter()) {
            body = body.replace(secret.as_str(), REDACTED);
        }
        body
    }
}

#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn deliver(&self, sms: &OutgoingSms) -> anyhow::Result<()>;
}

/// Sandbox: the stored outbox row is the delivery. Logs the masked
/// recipient, never the body (it carries a secret).
#[derive(Debug, Default)]
pub struct SandboxOutbox;

#[async_trait]
impl SmsSender for SandboxOutbox {
    async fn deliver(&self, sms: &OutgoingSms) -> anyhow::Result<()> {
        tracing::info!(to = %sms.to.masked(), "sms kept in the sandbox outbox (GET /dev/sms)");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(copy: OutboxCopy) -> OutgoingSms {
        let phone = Phone::parse("+33612345678").unwrap();
        OutgoingSms::approval_link(phone, "Acme", "https://sca.example/sca/SECRETLINK".into(), Millis(0), copy)
    }

    #[test]
    fn the_sandbox_outbox_keeps_the_whole_message() {
        let whole = sms(OutboxCopy::Whole);
        let stored = whole.stored().unwrap();
        assert_eq!(stored.body, whole.body);
        assert_eq!(stored.link, Some("https://sca.example/sca/SECRETLINK"));
    }

    #[test]
    fn the_production_outbox_keeps_no_link() {
        let redacted = sms(OutboxCopy::Redacted);
        let stored = redacted.stored().unwrap();
        assert!(!stored.body.contains("SECRETLINK"), "{}", stored.body);
        assert!(stored.body.contains("[redacted]"));
        assert_eq!((stored.link, stored.otp), (None, None));
        assert!(redacted.body.contains("SECRETLINK"), "the message as sent keeps its link");
    }

    #[test]
    fn the_outbox_of_a_provider_keeps_the_message_sealed_for_its_recipient_only() {
        let key = crate::sealed::SecretsKey::sandbox();
        let message = sms(OutboxCopy::Sealed(SmsSeal(key.clone())));
        let stored = message.stored().unwrap();
        assert!(!stored.body.contains("SECRETLINK") && stored.link.is_none(), "{}", stored.body);
        let sealed = stored.sealed.unwrap();
        assert!(!sealed.contains("SECRETLINK"));
        let opened = key.open(&sealed, &SmsSeal::owner(&message.to)).unwrap();
        assert_eq!(String::from_utf8(opened).unwrap(), message.body);
        assert!(key.open(&sealed, "sms to +33600000000").is_err(), "another recipient's row");
    }
}
