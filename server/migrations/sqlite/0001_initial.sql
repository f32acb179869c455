-- Passgate schema. Times are Unix milliseconds (UTC); secrets are stored only
-- as SHA-256 hashes.

CREATE TABLE companies (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    company_id      TEXT NOT NULL REFERENCES companies(id),
    phone           TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    -- WebAuthn user handle: random, never the phone number.
    webauthn_handle TEXT NOT NULL UNIQUE,
    created_at      INTEGER NOT NULL
);

CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    embed       INTEGER NOT NULL CHECK (embed IN (0, 1)),
    created_at  INTEGER NOT NULL
);

-- A partner acting for one user (what OAuth would grant).
CREATE TABLE access_tokens (
    token_hash  BLOB PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE sca_sessions (
    id              TEXT PRIMARY KEY,
    token_hash      BLOB NOT NULL UNIQUE,
    -- The approval page's secret (passkey method only); never the token.
    link_hash       BLOB UNIQUE,
    partner_id      TEXT NOT NULL REFERENCES partners(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    method          TEXT NOT NULL,
    action_type     TEXT NOT NULL,
    -- SHA-256 of the request the approval is bound to (dynamic linking).
    fingerprint     BLOB NOT NULL,
    -- JSON ActionSummary: what the user is shown, hence what they approve.
    summary         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('waiting', 'allow', 'deny', 'consumed')),
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    decided_at      INTEGER,
    consumed_at     INTEGER,
    last_polled_at  INTEGER
);

CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    -- Unique across all users: one credential never serves two accounts.
    credential_id   BLOB NOT NULL UNIQUE,
    -- webauthn-rs Passkey (public key, counter, backup flags) as JSON.
    passkey         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX passkeys_by_user ON passkeys(user_id);

-- Pending WebAuthn ceremonies, bound to one SCA session; taken (deleted) on finish.
CREATE TABLE webauthn_ceremonies (
    sca_session_id  TEXT NOT NULL REFERENCES sca_sessions(id),
    kind            TEXT NOT NULL CHECK (kind IN ('registration', 'authentication')),
    state           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (sca_session_id, kind)
);

CREATE TABLE sms_outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    to_phone    TEXT NOT NULL,
    body        TEXT NOT NULL,
    link        TEXT,
    otp         TEXT,
    sent_at     INTEGER NOT NULL
);
CREATE INDEX sms_outbox_by_phone ON sms_outbox(to_phone, id);

CREATE TABLE transfers (
    id              TEXT PRIMARY KEY,
    company_id      TEXT NOT NULL REFERENCES companies(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    partner_id      TEXT NOT NULL REFERENCES partners(id),
    sca_session_id  TEXT NOT NULL UNIQUE REFERENCES sca_sessions(id),
    amount_cents    INTEGER NOT NULL CHECK (amount_cents > 0),
    currency        TEXT NOT NULL,
    payee_name      TEXT NOT NULL,
    iban            TEXT NOT NULL,
    reference       TEXT,
    status          TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
CREATE INDEX transfers_by_company ON transfers(company_id, created_at);

CREATE TABLE beneficiaries (
    id              TEXT PRIMARY KEY,
    company_id      TEXT NOT NULL REFERENCES companies(id),
    sca_session_id  TEXT NOT NULL UNIQUE REFERENCES sca_sessions(id),
    name            TEXT NOT NULL,
    iban            TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);
