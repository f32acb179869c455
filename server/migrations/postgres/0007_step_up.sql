-- Binding a factor needs two factors proven within 5 minutes (see
-- `binding.rs`): each browser session keeps when it last proved the
-- password (`knowledge_at`) and a second factor or the registered phone
-- (`possession_at`). A step-up code sent by SMS is kept as its MAC (never
-- the code), with when it was sent and the wrong attempts it took.
ALTER TABLE browser_sessions ADD COLUMN knowledge_at BIGINT;
ALTER TABLE browser_sessions ADD COLUMN possession_at BIGINT;
ALTER TABLE browser_sessions ADD COLUMN step_up_mac BYTEA;
ALTER TABLE browser_sessions ADD COLUMN step_up_sent_at BIGINT;
ALTER TABLE browser_sessions ADD COLUMN step_up_failures INTEGER NOT NULL DEFAULT 0;
