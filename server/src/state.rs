//! The application's shared state, built once at start-up: what every
//! handler reaches through `State<AppState>`.

use std::sync::Arc;

use crate::account::{AccountParts, Accounts, PushService};
use crate::clock::{Clock, SandboxClock};
use crate::config::Config;
use crate::notify::push::{PushSender, SandboxPush};
use crate::notify::sms::{OutboxCopy, SmsSeal, SmsSender};
use crate::relying_party::RelyingParty;
use crate::sca::{Sca, ScaParts};
use crate::store::Store;

/// Cloned for every request (axum's `State`): one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

/// What the handlers reach through [`AppState`].
pub struct Parts {
    pub sca: Sca,
    pub accounts: Accounts,
    pub config: Arc<Config>,
    /// Sandbox only: the clock that `POST /dev/clock/advance` moves.
    pub dev_clock: Option<Arc<SandboxClock>>,
}

/// Who the domain hands its notices to once they are stored.
#[derive(Clone)]
pub struct Senders {
    pub sms: Arc<dyn SmsSender>,
    pub push: Arc<dyn PushSender>,
}

/// An SMS sender alone: pushes stay in the outbox (sandbox, tests).
impl<T: SmsSender> From<Arc<T>> for Senders {
    fn from(sms: Arc<T>) -> Self {
        Senders { sms, push: Arc::new(SandboxPush) }
    }
}

impl AppState {
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>, senders: impl Into<Senders>) -> anyhow::Result<Self> {
        Ok(AppState(Arc::new(Parts::new(config, store, clock, senders.into())?)))
    }

    /// A sandbox on `clock`, which `/dev/clock/advance` moves (the
    /// sender tasks keep time with it too).
    pub fn sandbox_with_clock(config: Config, store: Store, clock: Arc<SandboxClock>, senders: impl Into<Senders>) -> anyhow::Result<Self> {
        let mut parts = Parts::new(config, store, clock.clone(), senders.into())?;
        parts.dev_clock = parts.config.sandbox().then_some(clock);
        Ok(AppState(Arc::new(parts)))
    }
}

impl Parts {
    fn new(config: Config, store: Store, clock: Arc<dyn Clock>, senders: Senders) -> anyhow::Result<Self> {
        let Senders { sms, push } = senders;
        let relying_party = RelyingParty::new(&config.rp_id, &config.origin)?;
        // Sandbox: the outbox is the delivery; production keeps no secret
        // in clear, and seals the message for a provider if there is one.
        let outbox_copy = match (config.sandbox(), config.sms_provider.is_some()) {
            (true, _) => OutboxCopy::Whole,
            (false, true) => OutboxCopy::Sealed(SmsSeal(config.secrets_key.clone())),
            (false, false) => OutboxCopy::Redacted,
        };
        let accounts = Accounts::new(AccountParts {
            store: store.clone(),
            clock: clock.clone(),
            sealing: config.secrets_key.clone(),
            relying_party: relying_party.clone(),
            sms: sms.clone(),
            push: push.clone(),
            push_service: config.web_push.as_ref().map(|w| PushService { public_key: w.key.public_base64url(), hosts: w.hosts.clone() }),
            origin: config.origin.clone(),
            sandbox: config.sandbox(),
            outbox_copy: outbox_copy.clone(),
        });
        let sca = Sca::new(ScaParts {
            store: store.clone(),
            clock,
            sms,
            push,
            relying_party,
            origin: config.origin.clone(),
            secrets_key: config.secrets_key.clone(),
            sandbox: config.sandbox(),
            outbox_copy,
            limits: config.limits,
        });
        Ok(Parts { sca, accounts, config: Arc::new(config), dev_clock: None })
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}
