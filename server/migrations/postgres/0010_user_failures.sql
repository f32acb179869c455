-- Failures per user, not per code (PSD2 RTS art. 4(3)(b)): wrong
-- one-time codes (sms-otp, step-up) and wrong approval-link passwords add
-- up across every code and link of the user until one is right. Each
-- fifth blocks them all for a while, twice as long at each block of the
-- series (15 minutes, 30, 60, … at most 16 hours).
CREATE TABLE user_failures (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    failures INTEGER NOT NULL,
    locked_until BIGINT
);
