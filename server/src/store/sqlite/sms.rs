//! The SMS outbox: every SMS Passgate sends, stored before it leaves.

use rusqlite::{params, Connection};

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
