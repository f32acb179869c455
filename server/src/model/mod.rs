//! The records every layer speaks: the SCA session and its state machine,
//! the methods, the request fingerprint, who acts, passkeys and their
//! ceremonies, browser sessions, audit events. Pure data and rules: no HTTP, no storage, no
//! I/O, so that `store`, `relying_party` and `sca` all depend on this leaf
//! and never on each other upwards.

mod account;
mod audit;
mod confirmation;
mod fingerprint;
mod idempotency;
mod method;
mod party;
mod passkey;
mod session;

pub use account::{
    lock_after, BrowserSession, Company, Liveness, NewBrowserSession, NewTrustedBrowser, PasskeySummary, Stage, StepUpAttempt,
    TotpAcceptance, TotpAttempt, TotpCounter, TotpFactor, TrustedBrowser, TwoFactorPolicy, UserAttempt,
};
pub use audit::{AuditEvent, AuditKind, ClientInfo};
pub use confirmation::{ConfirmationPurpose, ConfirmationState, PhoneConfirmation};
pub use fingerprint::{Fingerprint, RequestParts};
pub use idempotency::{IdempotencyKey, InvalidIdempotencyKey};
pub use method::{Method, UnknownMethod};
pub use party::{Caller, Owner, Role, UserRecord};
pub use passkey::{CeremonyKind, LinkedSession, PairedPhone, PendingCeremony, RegistryEntry, StoredPasskey, UnpairedBy};
pub use session::{Closed, Decision, ReplayRefusal, Session, State, SESSION_LIFETIME_MS};
