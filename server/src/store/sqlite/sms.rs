//! The SMS outbox: every SMS Passgate sends, stored before it leaves.

use rusqlite::{params, Connection};

use crate::clock::Millis;
use crate::sms::OutgoingSms;
use crate::store::StoreResult;

pub(super) fn insert(tx: &Connection, sms: &OutgoingSms) -> StoreResult<()> {
    let stored = sms.stored();
    tx.prepare_cached("INSERT INTO sms_outbox (to_phone, body, link, otp, sent_at) VALUES (?, ?, ?, ?, ?)")?.execute(params![
        sms.to.as_str(),
        stored.body,
        stored.link,
        stored.otp,
        sms.sent_at.0
    ])?;
    Ok(())
}

pub(super) fn outbox(conn: &Connection, to: Option<&str>, limit: u32) -> StoreResult<Vec<shared::SmsMessage>> {
    let row = |r: &rusqlite::Row<'_>| {
        Ok(shared::SmsMessage { to: r.get(0)?, body: r.get(1)?, link: r.get(2)?, otp: r.get(3)?, sent_at: Millis(r.get(4)?).to_rfc3339() })
    };
    // Two statements, so that the filtered one uses its index.
    let messages = match to {
        Some(to) => conn
            .prepare_cached("SELECT to_phone, body, link, otp, sent_at FROM sms_outbox WHERE to_phone = ? ORDER BY id DESC LIMIT ?")?
            .query_map(params![to, limit], row)?
            .collect::<Result<Vec<_>, _>>()?,
        None => conn
            .prepare_cached("SELECT to_phone, body, link, otp, sent_at FROM sms_outbox ORDER BY id DESC LIMIT ?")?
            .query_map(params![limit], row)?
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(messages)
}
