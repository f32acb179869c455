-- A tamper-evident audit log and evidence (see `server/src/chain.rs`):
-- each new row of `audit_events` and `approval_evidence` takes the next
-- position of its table's chain (`seq`) and stores the chain's hash at
-- that row and its MAC (under a key derived from PASSGATE_SECRETS_KEY,
-- never stored here). `chain_heads` holds each chain's newest position
-- and hash: appends update it, so that they take their turn across
-- instances (its row lock). Rows written before this migration stay
-- unchained (`seq` NULL) and are reported as such. The retention purge
-- removes whole prefixes only and appends to `chain_anchors` the position
-- and hash it leaves, from which verification goes on.
ALTER TABLE audit_events ADD COLUMN seq BIGINT UNIQUE;
ALTER TABLE audit_events ADD COLUMN chain_hash BYTEA;
ALTER TABLE audit_events ADD COLUMN chain_mac BYTEA;
ALTER TABLE approval_evidence ADD COLUMN seq BIGINT UNIQUE;
ALTER TABLE approval_evidence ADD COLUMN chain_hash BYTEA;
ALTER TABLE approval_evidence ADD COLUMN chain_mac BYTEA;

CREATE TABLE chain_heads (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    hash  BYTEA NOT NULL
);
INSERT INTO chain_heads (chain, seq, hash)
VALUES ('audit_events', 0, decode(repeat('00', 32), 'hex')), ('approval_evidence', 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE chain_anchors (
    id     BIGSERIAL PRIMARY KEY,
    chain  TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    hash   BYTEA NOT NULL,
    mac    BYTEA NOT NULL,
    at     BIGINT NOT NULL
);
CREATE INDEX chain_anchors_by_chain ON chain_anchors(chain, seq);
CREATE TRIGGER chain_anchors_append_only BEFORE UPDATE OR DELETE ON chain_anchors
    FOR EACH ROW EXECUTE FUNCTION passgate_append_only();
CREATE TRIGGER chain_anchors_no_truncate BEFORE TRUNCATE ON chain_anchors
    FOR EACH STATEMENT EXECUTE FUNCTION passgate_append_only();
