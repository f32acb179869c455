//! What the HTTP layer asks besides approvals: who a bearer token was
//! issued to, the company's transfers, whether the database answers, and
//! the sandbox's SMS outbox. Handlers reach storage only through here.

use super::Sca;
use crate::error::{Error, Result};
use crate::model::Caller;
use crate::token::Secret;

impl Sca {
    /// The partner and user a bearer token was issued to.
    pub async fn caller(&self, token: &Secret) -> Result<Caller> {
        self.store.caller_by_access_token(&token.hash()).await?.ok_or(Error::Unauthorized)
    }

    /// The company's latest `limit` transfers, newest first.
    pub async fn transfers(&self, caller: &Caller, limit: u32) -> Result<Vec<shared::Transfer>> {
        Ok(self.store.transfers_of_company(&caller.company_id, limit).await?)
    }

    /// The database answers and is migrated.
    pub async fn ready(&self) -> Result<()> {
        self.store.ping().await.map_err(|e| {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            Error::Unavailable("The database does not answer")
        })
    }

    /// The sandbox's outbox: the newest `limit` messages, to `to` if given.
    pub async fn sms_outbox(&self, to: Option<&str>, limit: u32) -> Result<Vec<shared::SmsMessage>> {
        Ok(self.store.sms_outbox(to, limit).await?)
    }

    /// The sandbox's push outbox: the newest `limit` pushes.
    pub async fn push_outbox(&self, limit: u32) -> Result<Vec<shared::PushMessage>> {
        Ok(self.store.push_outbox(limit).await?)
    }
}
