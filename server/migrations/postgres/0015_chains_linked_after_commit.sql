-- Chains linked after the commit (see `server/src/chain.rs`). A row of
-- `audit_events` or `approval_evidence` is now appended without its
-- position, with a row MAC over its id and columns (`row_mac`), so that
-- no transaction holds the chain's head until its commit is flushed
-- (every audited operation of every instance queued on that row lock).
-- Right after the commit, a short transaction of the linker takes the
-- head, gives each waiting row whose row MAC verifies the next position,
-- hash and MAC, in id order, and moves the head. Rows linked at their
-- insert (before this step, and always on SQLite) keep `row_mac` NULL.
ALTER TABLE audit_events ADD COLUMN row_mac BYTEA;
ALTER TABLE approval_evidence ADD COLUMN row_mac BYTEA;
CREATE INDEX audit_events_waiting ON audit_events(id) WHERE seq IS NULL AND row_mac IS NOT NULL;
CREATE INDEX approval_evidence_waiting ON approval_evidence(id) WHERE seq IS NULL AND row_mac IS NOT NULL;

-- Still append-only, but for the link: a waiting row may be given its
-- position once, and nothing else of it may change. The application's
-- role may update those three columns only (`passgate grant-app-role`).
CREATE FUNCTION passgate_link_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.seq IS NULL AND OLD.chain_hash IS NULL AND OLD.chain_mac IS NULL AND OLD.row_mac IS NOT NULL
       AND NEW.seq IS NOT NULL AND NEW.chain_hash IS NOT NULL AND NEW.chain_mac IS NOT NULL
       AND to_jsonb(NEW) - 'seq' - 'chain_hash' - 'chain_mac' = to_jsonb(OLD) - 'seq' - 'chain_hash' - 'chain_mac' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only: a waiting row may only be given its position, once', TG_TABLE_NAME;
END;
$$;
DROP TRIGGER audit_events_append_only ON audit_events;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION passgate_link_only();
DROP TRIGGER approval_evidence_append_only ON approval_evidence;
CREATE TRIGGER approval_evidence_append_only BEFORE UPDATE ON approval_evidence
    FOR EACH ROW EXECUTE FUNCTION passgate_link_only();
