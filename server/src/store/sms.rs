//! The SMS outbox: every SMS Passgate sends, stored before it leaves.

use rusqlite::{params, Transaction};

use super::Store;
use crate::clock::Millis;
use crate::error::Result;
use crate::sms::OutgoingSms;

impl Store {
    pub(super) fn insert_sms(tx: &Transaction<'_>, sms: &OutgoingSms) -> Result<()> {
        tx.prepare_cached("INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at) VALUES (?, ?, ?, ?, ?)")?
            .execute(params![sms.to.as_str(), sms.body, sms.link, sms.otp, sms.sent_at.0])?;
        Ok(())
    }

    /// The outbox, newest first, optionally for one phone number.
    pub async fn sms_outbox(&self, to: Option<&str>, limit: u32) -> Result<Vec<shared::SmsMessage>> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT to_phone, body, link, otp, sent_at FROM sms_outbox
                 WHERE (?1 IS NULL OR to_phone = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![to, limit], |r| {
                Ok(shared::SmsMessage {
                    to: r.get(0)?,
                    body: r.get(1)?,
                    link: r.get(2)?,
                    otp: r.get(3)?,
                    sent_at: Millis(r.get(4)?).to_rfc3339(),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        }).await
    }
}
