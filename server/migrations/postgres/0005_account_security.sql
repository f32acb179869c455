-- Browser sessions of the account area. The cookie's secret is kept as its
-- SHA-256 only. `stage` says how far the sign-in went: the password alone
-- (a second factor is due), the password where the company forces a second
-- factor the user has not set up (`enrol`: only that set-up is open), or
-- the whole sign-in. A session idle for five
-- minutes, or older than its maximum age, is over: checked on each use,
-- deleted by the retention purge.
CREATE TABLE browser_sessions (
    token_hash   BYTEA PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    stage        TEXT NOT NULL CHECK (stage IN ('second_factor', 'enrol', 'signed_in')),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX browser_sessions_by_user ON browser_sessions(user_id);
CREATE INDEX browser_sessions_by_last_seen ON browser_sessions(last_seen_at);

-- A user's own security events, newest first (the account's activity).
CREATE INDEX audit_events_by_user ON audit_events(user_id, id);

-- Authenticator apps (TOTP): one per user, pending until confirmed with a
-- code. The key is sealed (AES-256-GCM under PASSGATE_SECRETS_KEY).
-- `last_step` is the last accepted time step (each is accepted once);
-- `failures` counts attempts since the last accepted code, reserved before
-- each check; the fifth sets `locked_until`.
CREATE TABLE totp_factors (
    user_id      TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    sealed_key   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT NOT NULL DEFAULT -1,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until BIGINT,
    last_used_at BIGINT
);

-- Recovery codes: SHA-256 hashes, each usable once.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at   BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

-- The company's two-factor policy: `forced` makes every user without a
-- second factor set one up at their next sign-in.
ALTER TABLE companies ADD COLUMN two_factor TEXT NOT NULL DEFAULT 'opt_in' CHECK (two_factor IN ('opt_in', 'forced'));
-- A passkey's name, as its owner calls it.
ALTER TABLE passkeys ADD COLUMN name TEXT;
CREATE INDEX users_by_company ON users(company_id);

-- Browsers a user trusts for 90 days after a sign-in with two factors: the
-- password alone signs in there. The cookie's secret is kept as its
-- SHA-256 only; `id` names the device in lists and revocations.
CREATE TABLE trusted_devices (
    token_hash   BYTEA PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX trusted_devices_by_user ON trusted_devices(user_id);

-- WebAuthn ceremonies of the account area (a passkey as the second step,
-- a passkey added), bound to the browser session that started them; taken
-- (deleted) by their finish, so each challenge answers once.
CREATE TABLE account_ceremonies (
    session_hash BYTEA NOT NULL REFERENCES browser_sessions(token_hash) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('registration', 'authentication')),
    state        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (session_hash, kind)
);

-- WebAuthn ceremonies of a sign-in with a passkey alone (discoverable
-- credentials, before any session): bound to the browser by a cookie whose
-- secret is kept as its SHA-256 only; taken (deleted) by their finish;
-- never-answered ones purged after an hour.
CREATE TABLE sign_in_ceremonies (
    id_hash    BYTEA PRIMARY KEY,
    state      TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX sign_in_ceremonies_by_age ON sign_in_ceremonies(created_at);
