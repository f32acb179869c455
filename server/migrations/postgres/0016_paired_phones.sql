-- The paired phone (seed 000): at most one per user at a time, enforced
-- by the partial unique index. Its passkey (platform authenticator,
-- resident, user verification required) approves `paired-device`
-- sessions; its device credential (256 bits in a cookie) is stored as a
-- hash only and lets the phone read its own pending approvals. An
-- unpaired phone keeps its row, ended, for the evidence and the report.
CREATE TABLE paired_phones (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users(id),
    credential_id  BYTEA NOT NULL UNIQUE,
    passkey        TEXT NOT NULL,
    sign_count     BIGINT NOT NULL DEFAULT 0,
    device_hash    BYTEA NOT NULL UNIQUE,
    paired_at      BIGINT NOT NULL,
    last_used_at   BIGINT,
    ended_at       BIGINT,
    ended_by       TEXT CHECK (ended_by IN ('phone', 'user', 'admin'))
);
CREATE UNIQUE INDEX paired_phones_one_per_user ON paired_phones(user_id) WHERE ended_at IS NULL;

-- The registration ceremony of a pairing, one per browser session,
-- taken once (its own table: an account passkey's ceremony of the same
-- session must never finish as a pairing, nor the reverse).
CREATE TABLE pairing_ceremonies (
    session_hash BYTEA PRIMARY KEY REFERENCES browser_sessions(token_hash) ON DELETE CASCADE,
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
