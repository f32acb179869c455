-- Accounts: a user signs in with an email and a password (argon2id, PHC
-- string), besides the phone number; an admin manages the company.
ALTER TABLE users ADD COLUMN email TEXT UNIQUE;
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin'));

-- Password attempts made from a session's approval link before its first
-- passkey: reserved before each check (a compare-and-set below 5), given
-- back when the password was right.
ALTER TABLE sca_sessions ADD COLUMN password_attempts INTEGER NOT NULL DEFAULT 0;
