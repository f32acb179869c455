-- The credential registry: every passkey bound to a user, and every
-- removal, appended and never changed, so that evidence is verified
-- against the key registered for that user at that time rather than
-- against a key kept in the evidence row itself. The public key is
-- webauthn-rs's COSE key (JSON); the attestation object, when the
-- browser's answer is at hand, base64url. No foreign key: a registry
-- entry outlives its user.
CREATE TABLE credential_registry (
    id                 BIGSERIAL PRIMARY KEY,
    user_id            TEXT NOT NULL,
    credential_id      BYTEA NOT NULL,
    public_key         TEXT,
    attestation_object TEXT,
    event              TEXT NOT NULL CHECK (event IN ('added', 'removed')),
    at                 BIGINT NOT NULL
);
CREATE INDEX credential_registry_by_credential ON credential_registry(credential_id, id);
CREATE TRIGGER credential_registry_append_only BEFORE UPDATE OR DELETE ON credential_registry
    FOR EACH ROW EXECUTE FUNCTION passgate_append_only();
CREATE TRIGGER credential_registry_no_truncate BEFORE TRUNCATE ON credential_registry
    FOR EACH STATEMENT EXECUTE FUNCTION passgate_append_only();
-- The passkeys of before: registered as added when they were created.
INSERT INTO credential_registry (user_id, credential_id, public_key, event, at)
SELECT user_id, credential_id, (passkey::jsonb -> 'cred' -> 'cred')::text, 'added', created_at FROM passkeys ORDER BY created_at;
