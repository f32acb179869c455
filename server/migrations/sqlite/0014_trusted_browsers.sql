-- "Device" is to mean a user's paired phone: the browsers a user trusts
-- for 90 days after a sign-in with two factors are "trusted browsers"
-- (their table was `trusted_devices`). The same rows, renamed; SQLite
-- cannot rename an index, so the one by user is made again.
ALTER TABLE trusted_devices RENAME TO trusted_browsers;
DROP INDEX trusted_devices_by_user;
CREATE INDEX trusted_browsers_by_user ON trusted_browsers(user_id);
