//! The SMS outbox: every SMS Passgate sends, stored before it leaves.

use sqlx::Row;

use super::Store;
use crate::clock::Millis;
use crate::error::Result;
use crate::sms::OutgoingSms;

impl Store {
    pub(super) async fn insert_sms(tx: &mut sqlx::SqliteConnection, sms: &OutgoingSms) -> Result<()> {
        sqlx::query("INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at) VALUES (?, ?, ?, ?, ?)")
            .bind(sms.to.as_str())
            .bind(&sms.body)
            .bind(sms.link.as_deref())
            .bind(sms.otp.as_deref())
            .bind(sms.sent_at.0)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// The outbox, newest first, optionally for one phone number.
    pub async fn sms_outbox(&self, to: Option<&str>, limit: u32) -> Result<Vec<shared::SmsMessage>> {
        let rows = sqlx::query(
            "SELECT to_phone, body, link, otp, sent_at FROM sms_outbox
             WHERE (?1 IS NULL OR to_phone = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(to)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(shared::SmsMessage {
                    to: r.try_get("to_phone")?,
                    body: r.try_get("body")?,
                    link: r.try_get("link")?,
                    otp: r.try_get("otp")?,
                    sent_at: Millis(r.try_get("sent_at")?).to_rfc3339(),
                })
            })
            .collect()
    }
}
