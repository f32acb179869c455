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
    session_hash  BLOB NOT NULL REFERENCES browser_sessions(token_hash) ON DELETE CASCADE,
    from_ip       TEXT,
    from_browser  TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('waiting', 'allowed', 'denied', 'canceled', 'used')),
    ceremony      TEXT,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    decided_at    INTEGER
);
CREATE INDEX phone_confirmations_by_user ON phone_confirmations(user_id, state);
CREATE INDEX phone_confirmations_by_session ON phone_confirmations(session_hash);

-- A push announces an SCA session or a confirmation, exactly one.
CREATE TABLE push_outbox_new (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_id         TEXT NOT NULL REFERENCES paired_phones(id),
    session_id       TEXT REFERENCES sca_sessions(id) ON DELETE CASCADE,
    confirmation_id  TEXT REFERENCES phone_confirmations(id) ON DELETE CASCADE,
    sent_at          INTEGER NOT NULL,
    CHECK ((session_id IS NULL) <> (confirmation_id IS NULL))
);
INSERT INTO push_outbox_new (id, phone_id, session_id, sent_at) SELECT id, phone_id, session_id, sent_at FROM push_outbox;
DROP TABLE push_outbox;
ALTER TABLE push_outbox_new RENAME TO push_outbox;
CREATE INDEX push_outbox_by_session ON push_outbox(session_id);
CREATE INDEX push_outbox_by_confirmation ON push_outbox(confirmation_id);
