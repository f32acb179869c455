-- The push outbox: every push to a paired phone, stored in the
-- transaction that opens the session it announces (its whole payload is
-- that session's id). In sandbox it is the delivery (`GET /dev/push`);
-- a real sender will mark what it delivered. Purged with its session.
CREATE TABLE push_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    phone_id    TEXT NOT NULL REFERENCES paired_phones(id),
    session_id  TEXT NOT NULL REFERENCES sca_sessions(id) ON DELETE CASCADE,
    sent_at     INTEGER NOT NULL
);
CREATE INDEX push_outbox_by_session ON push_outbox(session_id);
