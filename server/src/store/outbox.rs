//! The outboxes: every SMS Passgate sends, stored (whole in sandbox, its
//! secrets redacted in production) in the transaction that decided to
//! send it, and every push to a paired phone, stored with the session it
//! announces; written once for both databases.

use super::sql::{End, Kind, Tx};
use super::{run, Store, StoreResult};
use crate::clock::Millis;
use crate::notify::push::OutgoingPush;
use crate::notify::sms::OutgoingSms;

impl Store {
    /// The push outbox, newest first.
    pub async fn push_outbox(&self, limit: u32) -> StoreResult<Vec<shared::PushMessage>> {
        run!(self, Kind::Read, |tx| async {
            let rows = tx
                .query("SELECT phone_id, session_id, confirmation_id, sent_at FROM push_outbox ORDER BY id DESC LIMIT $1", &[limit.into()])
                .await?;
            let pushes = rows
                .iter()
                .map(|r| {
                    Ok(shared::PushMessage {
                        phone_id: r.get(0)?,
                        session_id: r.get(1)?,
                        confirmation_id: r.get(2)?,
                        sent_at: Millis(r.get(3)?).to_rfc3339(),
                    })
                })
                .collect::<StoreResult<_>>()?;
            Ok(End::Commit(pushes))
        })
    }

    /// The SMS outbox, newest first, optionally for one phone number.
    pub async fn sms_outbox(&self, to: Option<&str>, limit: u32) -> StoreResult<Vec<shared::SmsMessage>> {
        run!(self, Kind::Read, |tx| outbox(tx, to, limit))
    }
}

/// Stores `push`, announcing the SCA session `session_id`, in the push
/// outbox.
pub(super) async fn insert_push(tx: &impl Tx, push: &OutgoingPush, session_id: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO push_outbox (phone_id, session_id, sent_at) VALUES ($1, $2, $3)",
        &[push.phone_id.as_str().into(), session_id.into(), push.sent_at.0.into()],
    )
    .await?;
    Ok(())
}

/// Stores `push`, announcing the confirmation `confirmation_id`.
pub(super) async fn insert_confirmation_push(tx: &impl Tx, push: &OutgoingPush, confirmation_id: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO push_outbox (phone_id, confirmation_id, sent_at) VALUES ($1, $2, $3)",
        &[push.phone_id.as_str().into(), confirmation_id.into(), push.sent_at.0.into()],
    )
    .await?;
    Ok(())
}

/// Stores `sms` in the outbox.
pub(super) async fn insert(tx: &impl Tx, sms: &OutgoingSms) -> StoreResult<()> {
    let stored = sms.stored();
    tx.execute(
        "INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at) VALUES ($1, $2, $3, $4, $5)",
        &[sms.to.as_str().into(), stored.body.as_ref().into(), stored.link.into(), stored.otp.into(), sms.sent_at.0.into()],
    )
    .await?;
    Ok(())
}

async fn outbox(tx: &impl Tx, to: Option<&str>, limit: u32) -> StoreResult<End<Vec<shared::SmsMessage>>> {
    // Two statements, so that the filtered one uses its index.
    let rows = match to {
        Some(to) => {
            tx.query(
                "SELECT to_phone, body, link, otp, sent_at FROM sms_outbox WHERE to_phone = $1 ORDER BY id DESC LIMIT $2",
                &[to.into(), limit.into()],
            )
            .await?
        }
        None => tx.query("SELECT to_phone, body, link, otp, sent_at FROM sms_outbox ORDER BY id DESC LIMIT $1", &[limit.into()]).await?,
    };
    let messages = rows
        .iter()
        .map(|r| {
            Ok(shared::SmsMessage {
                to: r.get(0)?,
                body: r.get(1)?,
                link: r.get(2)?,
                otp: r.get(3)?,
                sent_at: Millis(r.get(4)?).to_rfc3339(),
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(End::Commit(messages))
}
