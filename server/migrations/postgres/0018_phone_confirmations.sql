-- What the paired phone confirms for the account area (seed 000): a
-- sign-in on another browser (a second factor), or pairing a new phone
-- in its place. Asked by one browser session, shown on the phone with
-- where it comes from, decided there with the phone's passkey (the
-- assertion's ceremony kept in the row until the finish takes it), used
-- once by the session that asked; gone with that session.
CREATE TABLE phone_confirmations (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    phone_id      TEXT NOT NULL REFERENCES paired_phones(id),
    purpose       TEXT NOT NULL CHECK (purpose IN ('sign_in', 'replace_phone')),
    session_hash  BYTEA NOT NULL REFERENCES browser_sessions(token_hash) ON DELETE CASCADE,
    from_ip       TEXT,
    from_browser  TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('waiting', 'allowed', 'denied', 'canceled', 'used')),
    ceremony      TEXT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    decided_at    BIGINT
);
CREATE INDEX phone_confirmations_by_user ON phone_confirmations(user_id, state);
CREATE INDEX phone_confirmations_by_session ON phone_confirmations(session_hash);

-- A push announces an SCA session or a confirmation, exactly one.
ALTER TABLE push_outbox ALTER COLUMN session_id DROP NOT NULL;
ALTER TABLE push_outbox ADD COLUMN confirmation_id TEXT REFERENCES phone_confirmations(id) ON DELETE CASCADE;
ALTER TABLE push_outbox ADD CONSTRAINT push_outbox_announces_one CHECK ((session_id IS NULL) <> (confirmation_id IS NULL));
CREATE INDEX push_outbox_by_confirmation ON push_outbox(confirmation_id);
