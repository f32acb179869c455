-- Browser sessions of the account area. The cookie's secret is kept as its
-- SHA-256 only. `stage` says how far the sign-in went: the password alone
-- (a second factor is due) or the whole sign-in. A session idle for five
-- minutes, or older than its maximum age, is over: checked on each use,
-- deleted by the retention purge.
CREATE TABLE browser_sessions (
    token_hash   BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('second_factor', 'signed_in')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_by_user ON browser_sessions(user_id);
CREATE INDEX browser_sessions_by_last_seen ON browser_sessions(last_seen_at);

-- A user's own security events, newest first (the account's activity).
CREATE INDEX audit_events_by_user ON audit_events(user_id, id);
