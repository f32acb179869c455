//! The application's shared state, built once at start-up: what every
//! handler reaches through `State<AppState>`.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::relying_party::RelyingParty;
use crate::sca::{Sca, ScaParts};
use crate::sms::SmsSender;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub sca: Sca,
    pub store: Store,
    pub config: Arc<Config>,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        clock: Arc<dyn Clock>,
        sms: Arc<dyn SmsSender>,
    ) -> anyhow::Result<Self> {
        let relying_party = RelyingParty::new(&config.rp_id, &config.origin)?;
        let sca = Sca::new(ScaParts {
            store: store.clone(),
            clock,
            sms,
            relying_party,
            origin: config.origin.clone(),
            sandbox: config.sandbox(),
            limits: config.limits,
        });
        Ok(AppState {
            sca,
            store,
            config: Arc::new(config),
        })
    }
}
