-- The production-grade core: evidence, limits, idempotency, retention,
-- and constraints that hold under concurrency without relying on SQLite's
-- single writer.

-- What the database was created for; sandbox never opens a production one.
CREATE TABLE meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);

-- ensure_company: one company per name, enforced by the database.
CREATE UNIQUE INDEX companies_by_name ON companies(name);

-- The first passkey from a link: a compare-and-set on this count, not a
-- NOT EXISTS that only one writer at a time makes safe.
ALTER TABLE users ADD COLUMN passkey_count INTEGER NOT NULL DEFAULT 0;
UPDATE users SET passkey_count = (SELECT COUNT(*) FROM passkeys WHERE passkeys.user_id = users.id);

-- The signature counter beside the credential: it only moves forward.
ALTER TABLE passkeys ADD COLUMN sign_count INTEGER NOT NULL DEFAULT 0;
UPDATE passkeys SET sign_count = COALESCE(json_extract(passkey, '$.cred.counter'), 0);

-- Open sessions per user are counted over this small index; the retention
-- purge finds unconsumed sessions that ran out over the second (consumed
-- ones stay as the record of their action, and never enter it).
CREATE INDEX sca_sessions_waiting_by_user ON sca_sessions(user_id, expires_at) WHERE state = 'waiting';
CREATE INDEX sca_sessions_unconsumed_by_expiry ON sca_sessions(expires_at) WHERE state != 'consumed';
CREATE INDEX sms_outbox_by_time ON sms_outbox(sent_at);

-- Rate limits (GCRA): per key, the theoretical arrival time of the next
-- request. One row per partner or user and limit.
CREATE TABLE rate_limits (
    key     TEXT PRIMARY KEY,
    tat     INTEGER NOT NULL
) WITHOUT ROWID;

-- X-Qonto-Idempotency-Key: the first successful response of a create,
-- per partner and key, for 30 minutes. The user it ran for is kept: the
-- same key for another user is another request, never their answer.
CREATE TABLE idempotency_keys (
    partner_id      TEXT NOT NULL REFERENCES partners(id),
    key             TEXT NOT NULL,
    user_id         TEXT NOT NULL REFERENCES users(id),
    fingerprint     BLOB NOT NULL,
    status          INTEGER NOT NULL,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (partner_id, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_time ON idempotency_keys(created_at);

-- The append-only audit log: no secret, no phone number.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    partner_id  TEXT,
    user_id     TEXT,
    session_id  TEXT,
    detail      TEXT NOT NULL,
    client_ip   TEXT,
    user_agent  TEXT
);
-- The purge walks rows in id order (ids grow with time): no time index to
-- write on every decision.
CREATE INDEX audit_events_by_session ON audit_events(session_id);
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;

-- Each passkey approval's evidence (what the user saw, the challenge, the
-- signed data, the public key), kept for the evidence retention; no
-- foreign key, so that it outlives the session row.
CREATE TABLE approval_evidence (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT NOT NULL UNIQUE,
    at          INTEGER NOT NULL,
    evidence    TEXT NOT NULL
);
CREATE TRIGGER approval_evidence_append_only BEFORE UPDATE ON approval_evidence
BEGIN
    SELECT RAISE(ABORT, 'approval_evidence is append-only');
END;

-- Ceremonies go with their session (the retention purge deletes sessions),
-- and stale ones (a consumed session's unanswered start) by age.
CREATE TABLE webauthn_ceremonies_v3 (
    sca_session_id  TEXT NOT NULL REFERENCES sca_sessions(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('registration', 'authentication')),
    ceremony_id     INTEGER NOT NULL,
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (sca_session_id, kind)
) WITHOUT ROWID;
INSERT INTO webauthn_ceremonies_v3 SELECT sca_session_id, kind, ceremony_id, state, created_at FROM webauthn_ceremonies;
DROP TABLE webauthn_ceremonies;
ALTER TABLE webauthn_ceremonies_v3 RENAME TO webauthn_ceremonies;
CREATE INDEX webauthn_ceremonies_by_time ON webauthn_ceremonies(created_at);
