//! The account area's browser sessions, keyed by their secret's hash.

use rusqlite::{params, Connection};

use crate::store::StoreResult;
use crate::token::SecretHash;

/// Ends the user's browser sessions but `keep`, and their trusted browsers.
pub(super) fn end_others(tx: &Connection, user_id: &str, keep: Option<&SecretHash>) -> StoreResult<u64> {
    let keep: &[u8] = keep.map_or(&[], |k| &k.0[..]);
    let ended = tx.prepare_cached("DELETE FROM browser_sessions WHERE user_id = ? AND token_hash <> ?")?.execute(params![user_id, keep])?;
    tx.prepare_cached("DELETE FROM trusted_devices WHERE user_id = ?")?.execute([user_id])?;
    Ok(u64::try_from(ended).unwrap_or(u64::MAX))
}
