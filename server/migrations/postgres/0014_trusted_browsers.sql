-- "Device" is to mean a user's paired phone: the browsers a user trusts
-- for 90 days after a sign-in with two factors are "trusted browsers"
-- (their table was `trusted_devices`). The same rows, renamed, with the
-- index and the constraints PostgreSQL named after the table.
ALTER TABLE trusted_devices RENAME TO trusted_browsers;
ALTER INDEX trusted_devices_by_user RENAME TO trusted_browsers_by_user;
ALTER TABLE trusted_browsers RENAME CONSTRAINT trusted_devices_pkey TO trusted_browsers_pkey;
ALTER TABLE trusted_browsers RENAME CONSTRAINT trusted_devices_id_key TO trusted_browsers_id_key;
ALTER TABLE trusted_browsers RENAME CONSTRAINT trusted_devices_user_id_fkey TO trusted_browsers_user_id_fkey;
