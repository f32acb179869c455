//! The hash chain that makes the audit log and the approval evidence
//! tamper-evident. Each row of a chained table has a position (`seq`,
//! 1, 2, 3, … with no gap) and stores
//!
//! - `hash = SHA-256(previous row's hash ‖ canonical(seq, the row's columns))`
//!   (the first row follows [`GENESIS`], or the anchor a purge left), and
//! - `mac = HMAC-SHA-256(key, table ‖ hash)`, under a key derived from
//!   `PASSGATE_SECRETS_KEY` that never enters the database.
//!
//! Whoever can write the database but does not hold the key can neither
//! change, insert, delete nor reorder a row without breaking the chain at
//! that row: a changed row no longer hashes to its `hash`; a new or
//! renumbered one has no valid `mac`; a removed one leaves a gap in `seq`.
//! Only the newest rows can go unnoticed if cut off together with the
//! head (no chain protects its own end): on PostgreSQL the application's
//! role cannot delete them, and `passgate audit verify` prints the head
//! to keep elsewhere.
//!
//! Where several writers share the database (PostgreSQL), a row is
//! appended without its position, so that no transaction holds the
//! chain's head until its commit reaches the disk: it stores instead a
//! row MAC (`row_mac = HMAC-SHA-256(key, "row" ‖ table ‖ id ‖ the
//! columns' encoding)`), and right after its commit a linker gives it the next
//! position, in id order, in a short transaction of its own. The linker
//! links only rows whose row MAC verifies, and verification reports the
//! rows still waiting, a forged one as a break. Until it is linked, a
//! row removed by the database's owner goes unnoticed: the window is the
//! linker's delay (milliseconds; the next start's sweep after a crash).
//!
//! This module is values only: storage calls it inside the transaction
//! that appends or links a row, and `audit::chain` calls it to verify.

use hmac::Mac;
use sha2::{Digest, Sha256};

use crate::sealed::SecretsKey;
use crate::token::hmac_sha256;

/// The hash before the first row of a chain.
pub const GENESIS: [u8; 32] = [0; 32];

/// The chained tables; each is a chain of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chain {
    AuditEvents,
    ApprovalEvidence,
}

impl Chain {
    pub const ALL: [Chain; 2] = [Chain::AuditEvents, Chain::ApprovalEvidence];

    /// The table, which is also the chain's name in `chain_heads` and
    /// `chain_anchors`.
    pub fn table(self) -> &'static str {
        match self {
            Chain::AuditEvents => "audit_events",
            Chain::ApprovalEvidence => "approval_evidence",
        }
    }
}

/// A column's value, as the chain reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Text(Option<&'a str>),
}

/// The row's bytes under the hash: its position, then its columns
/// ([`encode`]).
pub fn canonical(seq: i64, columns: &[Value<'_>]) -> Vec<u8> {
    at_position(seq, &encode(columns))
}

/// [`canonical`] of the row at `seq` whose columns encode as `encoded`.
pub fn at_position(seq: i64, encoded: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 + encoded.len());
    bytes.extend_from_slice(&seq.to_be_bytes());
    bytes.extend_from_slice(encoded);
    bytes
}

/// The columns' bytes: each tagged and length-prefixed, so that no two
/// rows share an encoding (a column's end cannot pass for the next one's
/// start, nor NULL for "").
pub fn encode(columns: &[Value<'_>]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(64 + columns.len() * 16);
    for column in columns {
        match column {
            Value::Int(n) => {
                bytes.push(b'i');
                bytes.extend_from_slice(&n.to_be_bytes());
            }
            Value::Text(None) => bytes.push(b'n'),
            Value::Text(Some(text)) => {
                bytes.push(b's');
                bytes.extend_from_slice(&(text.len() as u64).to_be_bytes());
                bytes.extend_from_slice(text.as_bytes());
            }
        }
    }
    bytes
}

/// The hash of the row at `seq` that follows `previous`.
pub fn next_hash(previous: &[u8; 32], seq: i64, columns: &[Value<'_>]) -> [u8; 32] {
    hash_after(previous, &canonical(seq, columns))
}

/// The key rows are MACed under. `Debug` never shows it.
#[derive(Clone)]
pub struct ChainKey([u8; 32]);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl ChainKey {
    pub fn new(secrets: &SecretsKey) -> Self {
        ChainKey(secrets.derive("passgate audit chain v1"))
    }

    fn hmac(&self, chain: Chain, hash: &[u8]) -> hmac::Hmac<Sha256> {
        let mut mac = hmac_sha256(&self.0);
        mac.update(chain.table().as_bytes());
        mac.update(&[0]);
        mac.update(hash);
        mac
    }

    /// The MAC a row of `chain` with this hash stores.
    pub fn mac(&self, chain: Chain, hash: &[u8; 32]) -> [u8; 32] {
        self.hmac(chain, hash).finalize().into_bytes().into()
    }

    /// Whether `mac` is the MAC of `hash` in `chain` (constant time).
    pub fn verifies(&self, chain: Chain, hash: &[u8], mac: &[u8]) -> bool {
        self.hmac(chain, hash).verify_slice(mac).is_ok()
    }
}

impl ChainKey {
    fn row_hmac(&self, chain: Chain, id: i64, encoded: &[u8]) -> hmac::Hmac<Sha256> {
        let mut mac = hmac_sha256(&self.0);
        mac.update(b"row\0");
        mac.update(chain.table().as_bytes());
        mac.update(&[0]);
        mac.update(&id.to_be_bytes());
        mac.update(encoded);
        mac
    }

    /// The row MAC of the row `id` of `chain` that waits for its position:
    /// over its id and its columns, so that neither a copy under another
    /// id nor a changed column verifies.
    pub fn row_mac(&self, chain: Chain, id: i64, columns: &[Value<'_>]) -> [u8; 32] {
        self.row_hmac(chain, id, &encode(columns)).finalize().into_bytes().into()
    }

    /// Whether `mac` is the row MAC of the row `id` whose columns encode as
    /// `encoded` ([`encode`]), in constant time.
    pub fn row_verifies(&self, chain: Chain, id: i64, encoded: &[u8], mac: &[u8]) -> bool {
        self.row_hmac(chain, id, encoded).verify_slice(mac).is_ok()
    }
}

/// What appending a row to a chain stores with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub hash: [u8; 32],
    pub mac: [u8; 32],
}

impl ChainKey {
    /// The link of the row at `seq`, which follows the hash `previous`.
    pub fn link(&self, chain: Chain, seq: i64, previous: &[u8; 32], columns: &[Value<'_>]) -> Link {
        let hash = next_hash(previous, seq, columns);
        Link { seq, hash, mac: self.mac(chain, &hash) }
    }
}

/// The hash of a row whose canonical bytes are `content`, after `previous`.
pub fn hash_after(previous: &[u8], content: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(content);
    hasher.finalize().into()
}

/// What an anchor's MAC covers (with the key, as a row's hash is): the
/// position a purge left and the hash of the row there, so that no one
/// without the key can move the start of verification.
pub fn anchor_digest(seq: i64, hash: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"passgate chain anchor\0");
    hasher.update(seq.to_be_bytes());
    hasher.update(hash);
    hasher.finalize().into()
}

/// A chained row as the retention purge weighs it.
#[derive(Debug, Clone, Copy)]
pub struct Aged<'a> {
    pub seq: i64,
    pub at: i64,
    pub content: &'a [u8],
    pub hash: &'a [u8],
    /// Whether its MAC is the key's.
    pub mac_ok: bool,
}

/// What the retention purge may remove of `rows` (the oldest rows, in
/// order), after the chain's start (`seq`, `hash`: genesis or the last
/// anchor): the longest run that is older than `cutoff` and verifies, as
/// the position and hash of its last row (the new anchor). It stops before
/// a break, so that a purge never launders one.
pub fn purgeable(rows: &[Aged<'_>], mut seq: i64, start: &[u8], cutoff: i64) -> Option<(i64, [u8; 32])> {
    let mut last = None;
    let mut previous = start.to_vec();
    for row in rows {
        let hash = hash_after(&previous, row.content);
        if row.seq != seq + 1 || row.at >= cutoff || hash != row.hash || !row.mac_ok {
            break;
        }
        seq = row.seq;
        previous = hash.to_vec();
        last = Some((seq, hash));
    }
    last
}

/// A stored hash as the 32 bytes it must be (a wrong length is a break).
pub fn hash_of(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_tells_null_from_empty_and_where_each_column_ends() {
        let a = canonical(1, &[Value::Text(Some("ab")), Value::Text(Some("c"))]);
        let b = canonical(1, &[Value::Text(Some("a")), Value::Text(Some("bc"))]);
        assert_ne!(a, b);
        assert_ne!(canonical(1, &[Value::Text(None)]), canonical(1, &[Value::Text(Some(""))]));
        assert_ne!(canonical(1, &[Value::Int(7)]), canonical(2, &[Value::Int(7)]), "the position is hashed");
        assert_eq!(canonical(3, &[Value::Int(7)]), at_position(3, &encode(&[Value::Int(7)])));
    }

    #[test]
    fn a_link_follows_its_head_and_its_mac_needs_the_key_and_the_table() {
        let key = ChainKey::new(&SecretsKey::sandbox());
        let columns = [Value::Int(5), Value::Text(Some("session.created"))];
        let first = key.link(Chain::AuditEvents, 1, &GENESIS, &columns);
        assert_eq!(first.hash, next_hash(&GENESIS, 1, &columns));
        let second = key.link(Chain::AuditEvents, 2, &first.hash, &columns);
        assert_ne!(second.hash, first.hash, "the same content at another place hashes apart");
        assert!(key.verifies(Chain::AuditEvents, &first.hash, &first.mac));
        assert!(!key.verifies(Chain::ApprovalEvidence, &first.hash, &first.mac), "bound to its table");
        let other = ChainKey::new(&SecretsKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
        assert!(!other.verifies(Chain::AuditEvents, &first.hash, &first.mac), "bound to the key");
    }

    #[test]
    fn a_row_mac_binds_the_row_to_its_id_its_table_its_columns_and_the_key() {
        let key = ChainKey::new(&SecretsKey::sandbox());
        let columns = [Value::Int(5), Value::Text(Some("session.created"))];
        let mac = key.row_mac(Chain::AuditEvents, 41, &columns);
        let content = encode(&columns);
        assert!(key.row_verifies(Chain::AuditEvents, 41, &content, &mac));
        assert!(!key.row_verifies(Chain::AuditEvents, 42, &content, &mac), "a copy under another id");
        assert!(!key.row_verifies(Chain::ApprovalEvidence, 41, &content, &mac), "another table");
        let changed = encode(&[Value::Int(6), Value::Text(Some("session.created"))]);
        assert!(!key.row_verifies(Chain::AuditEvents, 41, &changed, &mac), "a changed column");
        let other = ChainKey::new(&SecretsKey::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap());
        assert!(!other.row_verifies(Chain::AuditEvents, 41, &content, &mac), "another key");
        assert!(!key.verifies(Chain::AuditEvents, &content, &mac), "a row MAC is no link's MAC");
    }
}
