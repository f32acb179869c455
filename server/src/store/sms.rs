//! The SMS outbox: every SMS Passgate sends, stored before it leaves.

use rusqlite::{params, Connection};

use super::Store;
use crate::clock::Millis;
use crate::error::Result;
use crate::sms::OutgoingSms;

impl Store {
    pub(super) fn insert_sms(tx: &Connection, sms: &OutgoingSms) -> Result<()> {
        tx.prepare_cached("INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at) VALUES (?, ?, ?, ?, ?)")?
            .execute(params![sms.to.as_str(), sms.body, sms.link, sms.otp, sms.sent_at.0])?;
        Ok(())
    }

    /// The outbox, newest first, optionally for one phone number.
    pub async fn sms_outbox(&self, to: Option<&str>, limit: u32) -> Result<Vec<shared::SmsMessage>> {
        let row = |r: &rusqlite::Row<'_>| {
            Ok(shared::SmsMessage {
                to: r.get(0)?,
                body: r.get(1)?,
                link: r.get(2)?,
                otp: r.get(3)?,
                sent_at: Millis(r.get(4)?).to_rfc3339(),
            })
        };
        self.read(|conn| {
            // Two statements, so that the filtered one uses its index.
            let messages = match to {
                Some(to) => conn
                    .prepare_cached(
                        "SELECT to_phone, body, link, otp, sent_at FROM sms_outbox
                         WHERE to_phone = ? ORDER BY id DESC LIMIT ?",
                    )?
                    .query_map(params![to, limit], row)?
                    .collect::<Result<Vec<_>, _>>()?,
                None => conn
                    .prepare_cached("SELECT to_phone, body, link, otp, sent_at FROM sms_outbox ORDER BY id DESC LIMIT ?")?
                    .query_map(params![limit], row)?
                    .collect::<Result<Vec<_>, _>>()?,
            };
            Ok(messages)
        })
        .await
    }
}
