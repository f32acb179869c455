-- Pending ceremonies: one B-tree keyed by (session, kind), and a random id
-- per start, so that a finish consumes exactly the ceremony it verified
-- (comparing an integer instead of the whole saved state).

CREATE TABLE webauthn_ceremonies_v2 (
    sca_session_id  TEXT NOT NULL REFERENCES sca_sessions(id),
    kind            TEXT NOT NULL CHECK (kind IN ('registration', 'authentication')),
    ceremony_id     INTEGER NOT NULL,
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (sca_session_id, kind)
) WITHOUT ROWID;

INSERT INTO webauthn_ceremonies_v2 (sca_session_id, kind, ceremony_id, state, created_at)
    SELECT sca_session_id, kind, rowid, state, created_at FROM webauthn_ceremonies;
DROP TABLE webauthn_ceremonies;
ALTER TABLE webauthn_ceremonies_v2 RENAME TO webauthn_ceremonies;
