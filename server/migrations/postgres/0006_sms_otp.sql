-- The one-time code of an `sms-otp` session: HMAC-SHA256 under a key
-- derived from PASSGATE_SECRETS_KEY of the session's token hash and the
-- code (a 6-digit code's plain hash would fall to a table of a million);
-- wrong codes count in `password_attempts` (the session's attempts at its
-- secret). A new code for the same request supersedes the waiting one.
ALTER TABLE sca_sessions ADD COLUMN otp_hash BYTEA;
