-- A tamper-evident audit log and evidence (see `server/src/chain.rs`):
-- each new row of `audit_events` and `approval_evidence` takes the next
-- position of its table's chain (`seq`) and stores the chain's hash at
-- that row and its MAC (under a key derived from PASSGATE_SECRETS_KEY,
-- never stored here). `chain_heads` holds each chain's newest position
-- and hash: appends update it, so that they take their turn. Rows written
-- before this migration stay unchained (`seq` NULL) and are reported as
-- such. The retention purge removes whole prefixes only and appends to
-- `chain_anchors` the position and hash it leaves, from which
-- verification goes on.
ALTER TABLE audit_events ADD COLUMN seq INTEGER;
ALTER TABLE audit_events ADD COLUMN chain_hash BLOB;
ALTER TABLE audit_events ADD COLUMN chain_mac BLOB;
CREATE UNIQUE INDEX audit_events_by_seq ON audit_events(seq);
ALTER TABLE approval_evidence ADD COLUMN seq INTEGER;
ALTER TABLE approval_evidence ADD COLUMN chain_hash BLOB;
ALTER TABLE approval_evidence ADD COLUMN chain_mac BLOB;
CREATE UNIQUE INDEX approval_evidence_by_seq ON approval_evidence(seq);

CREATE TABLE chain_heads (
    chain TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL,
    hash  BLOB NOT NULL
) WITHOUT ROWID;
INSERT INTO chain_heads (chain, seq, hash) VALUES ('audit_events', 0, zeroblob(32)), ('approval_evidence', 0, zeroblob(32));

CREATE TABLE chain_anchors (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    chain  TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    hash   BLOB NOT NULL,
    mac    BLOB NOT NULL,
    at     INTEGER NOT NULL
);
CREATE INDEX chain_anchors_by_chain ON chain_anchors(chain, seq);
CREATE TRIGGER chain_anchors_no_update BEFORE UPDATE ON chain_anchors
BEGIN
    SELECT RAISE(ABORT, 'chain_anchors is append-only');
END;
CREATE TRIGGER chain_anchors_no_delete BEFORE DELETE ON chain_anchors
BEGIN
    SELECT RAISE(ABORT, 'chain_anchors is append-only');
END;
