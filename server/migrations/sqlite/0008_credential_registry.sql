-- The credential registry: every passkey bound to a user, and every
-- removal, appended and never changed, so that evidence is verified
-- against the key registered for that user at that time rather than
-- against a key kept in the evidence row itself. The public key is
-- webauthn-rs's COSE key (JSON); the attestation object, when the
-- browser's answer is at hand, base64url. No foreign key: a registry
-- entry outlives its user.
CREATE TABLE credential_registry (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id            TEXT NOT NULL,
    credential_id      BLOB NOT NULL,
    public_key         TEXT,
    attestation_object TEXT,
    event              TEXT NOT NULL CHECK (event IN ('added', 'removed')),
    at                 INTEGER NOT NULL
);
CREATE INDEX credential_registry_by_credential ON credential_registry(credential_id, id);
CREATE TRIGGER credential_registry_no_update BEFORE UPDATE ON credential_registry
BEGIN
    SELECT RAISE(ABORT, 'credential_registry is append-only');
END;
CREATE TRIGGER credential_registry_no_delete BEFORE DELETE ON credential_registry
BEGIN
    SELECT RAISE(ABORT, 'credential_registry is append-only');
END;
-- The passkeys of before: registered as added when they were created.
INSERT INTO credential_registry (user_id, credential_id, public_key, event, at)
SELECT user_id, credential_id, json_extract(passkey, '$.cred.cred'), 'added', created_at FROM passkeys ORDER BY created_at;
