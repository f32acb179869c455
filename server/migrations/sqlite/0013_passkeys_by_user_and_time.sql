-- A user's passkeys are read in their order of creation (`WHERE user_id =
-- ? ORDER BY created_at`): the index PostgreSQL has had since its first
-- migration serves the order too, where SQLite's sorted each time. Found
-- by comparing the two schemas (`server/src/store/schemas.rs`).
DROP INDEX passkeys_by_user;
CREATE INDEX passkeys_by_user ON passkeys(user_id, created_at);
