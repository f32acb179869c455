-- Authenticator-app locks that hold: `failures` now counts every wrong
-- code since the last accepted one, across locks, and each fifth locks
-- the app for twice as long as the one before (15 minutes, 30, 60, … at
-- most 16 hours). Recovery codes count apart (`recovery_failures`,
-- `recovery_locked_until`), so that guesses at the app's codes cannot
-- keep the recovery codes locked too.
ALTER TABLE totp_factors ADD COLUMN recovery_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE totp_factors ADD COLUMN recovery_locked_until BIGINT;
