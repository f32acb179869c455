-- Self-service factor changes. A user replaces their own authenticator
-- app: the new key waits in `next_key` while the old one keeps working,
-- and takes its place only when a code of the new app confirms it.
-- A user who lost their app proves their registered phone by SMS instead
-- (`browser_sessions.phone_at`): that proof admits replacing the app and
-- nothing else (it binds no passkey).
ALTER TABLE totp_factors ADD COLUMN next_key TEXT;
ALTER TABLE totp_factors ADD COLUMN next_created_at BIGINT;
ALTER TABLE browser_sessions ADD COLUMN phone_at BIGINT;
