//! The SCA domain, free of HTTP: the session state machine, the request
//! fingerprint (dynamic linking), the methods, the guard that every
//! sensitive action goes through, and the approval page's operations.

mod approval;
mod fingerprint;
mod guard;
mod method;
mod session;

use std::sync::Arc;

use url::Url;

pub use fingerprint::{Fingerprint, RequestParts};
pub use guard::ProtectedRequest;
pub use method::{Method, UnknownMethod};
pub use session::{Closed, Decision, Owner, Session, State, SESSION_LIFETIME_MS};

use crate::clock::Clock;
use crate::relying_party::RelyingParty;
use crate::sms::SmsSender;
use crate::store::Store;

/// The SCA service: everything a handler asks of the domain.
#[derive(Clone)]
pub struct Sca {
    store: Store,
    clock: Arc<dyn Clock>,
    sms: Arc<dyn SmsSender>,
    relying_party: RelyingParty,
    /// Where approval links point: `{link_base}{link}`, i.e.
    /// `{origin}/sca/{link}`.
    link_base: Arc<str>,
    sandbox: bool,
}

impl Sca {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        sms: Arc<dyn SmsSender>,
        relying_party: RelyingParty,
        origin: Url,
        sandbox: bool,
    ) -> Self {
        let link_base = format!("{}/sca/", origin.as_str().trim_end_matches('/')).into();
        Sca { store, clock, sms, relying_party, link_base, sandbox }
    }
}
