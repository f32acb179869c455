-- Chains linked after the commit (see `server/src/chain.rs`): on
-- PostgreSQL a row is appended without its position, with a row MAC
-- (`row_mac`), and linked right after its commit. SQLite's one writer
-- links each row at its insert, so `row_mac` stays NULL here; the column
-- and the index keep the two schemas alike.
ALTER TABLE audit_events ADD COLUMN row_mac BLOB;
ALTER TABLE approval_evidence ADD COLUMN row_mac BLOB;
CREATE INDEX audit_events_waiting ON audit_events(id) WHERE seq IS NULL AND row_mac IS NOT NULL;
CREATE INDEX approval_evidence_waiting ON approval_evidence(id) WHERE seq IS NULL AND row_mac IS NOT NULL;
